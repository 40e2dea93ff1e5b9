"""The HTTP side of a run: one httpx client, explicit timeouts, the token only in its header.

Proxies are a decision, not an accident of the environment: the client uses `proxy` when one is
given, the environment's `HTTPS_PROXY` / `NO_PROXY` (and `SSL_CERT_FILE`, `SSL_CERT_DIR`, as
httpx's `trust_env` reads them) only with `use_env_proxy`, and otherwise connects directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from tiktok_sender import __version__
from tiktok_sender.settings import Secret, redact


@dataclass(frozen=True)
class Response:
    """What came back over HTTP, or the transport error instead (`status` is None then)."""

    status: int | None
    body: bytes = b""
    retry_after: str | None = None
    error: str | None = None


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
        proxy: str | None = None,
        use_env_proxy: bool = False,
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
            follow_redirects=False,  # a redirect is a configuration error, never followed
            proxy=proxy,
            trust_env=use_env_proxy,
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
