"""The HTTP side of a run: one httpx client, explicit timeouts, the token only in its header."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx

from tiktok_sender import __version__
from tiktok_sender.classify import Response
from tiktok_sender.settings import Secret, redact


class ApiClient:
    """POSTs request bodies to the track endpoint; transport errors come back as a Response."""

    def __init__(
        self,
        url: str,
        token: Secret,
        *,
        concurrency: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._url = url
        self._token = token
        self._client = httpx.AsyncClient(
            headers={
                "Access-Token": token.reveal(),
                "Content-Type": "application/json",
                "User-Agent": f"tiktok-outbox-sender/{__version__}",
            },
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=None
            ),
            limits=httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            ),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"ApiClient(url={self._url!r}, token={self._token!r})"

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    async def post(self, body: bytes) -> Response:
        try:
            response = await self._client.post(self._url, content=body)
        except httpx.TimeoutException as exc:
            return Response(None, error=f"timeout ({exc.__class__.__name__})")
        except httpx.HTTPError as exc:
            detail = redact(str(exc), self._token) or exc.__class__.__name__
            return Response(None, error=f"connection error ({exc.__class__.__name__}: {detail})")
        return Response(
            response.status_code, response.content, response.headers.get("retry-after")
        )
