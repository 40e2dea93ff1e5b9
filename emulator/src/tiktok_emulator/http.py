"""A minimal HTTP/1.1 server on asyncio streams: keep-alive, Content-Length bodies, no threads.

Enough for the emulator's clients (httpx, curl, urllib) and fast enough not to be the bottleneck
of a benchmark: one coroutine per connection, a handful of syscalls per request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("tiktok_emulator")

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering; with `reset`, abort it with a TCP RST."""

    reset: bool = False


DROP = Drop()
RESET = Drop(reset=True)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
Handler = Callable[[Request], Awaitable[Reply | Drop]]


def _head(reply: Reply, keep_alive: bool) -> bytes:
    reason = HTTPStatus(reply.status).phrase if reply.status in HTTPStatus._value2member_map_ else ""
    lines = [
        f"HTTP/1.1 {reply.status} {reason}",
        f"Content-Type: {reply.content_type}",
        f"Content-Length: {len(reply.body)}",
        "Connection: keep-alive" if keep_alive else "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in reply.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_request(reader: asyncio.StreamReader) -> Request | Reply | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed the connection
    except asyncio.LimitOverrunError:
        return Reply(431, b"request header too large", "text/plain")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        return Reply(400, b"bad request line", "text/plain")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Reply(411, b"Content-Length required", "text/plain")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return Reply(400, b"bad Content-Length", "text/plain")
    if length < 0 or length > MAX_BODY_BYTES:
        return Reply(413, b"body too large", "text/plain")
    body = await reader.readexactly(length) if length else b""
    url = urlsplit(target)
    return Request(method.upper(), url.path, parse_qs(url.query), headers, body)


async def serve_connection(
    handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            request = await _read_request(reader)
            if request is None:
                break
            if isinstance(request, Reply):
                writer.write(_head(request, False) + request.body)
                await writer.drain()
                break
            reply = await handler(request)
            if isinstance(reply, Drop):
                if reply.reset:
                    _reset(writer)
                break
            keep_alive = request.headers.get("connection", "").lower() != "close"
            writer.write(_head(reply, keep_alive) + reply.body)
            await writer.drain()
            if not keep_alive:
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    except Exception:  # a handler bug must not kill the server; log it and drop the connection
        log.exception("emulator: error while serving a request")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def start_server(handler: Handler, host: str, port: int) -> asyncio.Server:
    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve_connection(handler, reader, writer)
        except asyncio.CancelledError:
            # Shutdown cancels open connections; asyncio (3.11) would log a cancelled handler
            # task as an error, so end it normally.
            writer.transport.abort()

    return await asyncio.start_server(on_connection, host, port, limit=MAX_HEADER_BYTES, backlog=512)
