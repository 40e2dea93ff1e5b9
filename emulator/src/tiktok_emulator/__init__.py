"""A local stand-in for the TikTok Events API, for the demo, the tests and the benchmark.

In-process (tests):

    with EmulatorThread(token=Secret("t"), faults=FaultSpec.parse("throttle=0.2")) as emu:
        ...  # emu.url is the track endpoint on an ephemeral port
        emu.stats(); emu.events()

As a process: `python -m tiktok_emulator --port 8765` or `tiktok-emulator` (`cli`, around
`serve_forever`).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self, TypeVar

from tiktok_emulator.app import API_VERSION, EmulatorApp
from tiktok_emulator.faults import FaultSpec
from tiktok_emulator.http import start_server
from tiktok_sender.errors import ConfigError
from tiktok_sender.settings import Secret

__all__ = ["EmulatorApp", "EmulatorThread", "FaultSpec", "serve_forever", "track_url"]

T = TypeVar("T")


async def _cancel_connections() -> None:
    """Cancel the connection handlers still running (hanging faults, idle keep-alives)."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def track_url(host: str, port: int) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/open_api/{API_VERSION}/event/track/"


class EmulatorThread:
    """The emulator on its own event loop in a background thread, on an ephemeral port."""

    def __init__(
        self,
        *,
        token: Secret | None = None,
        seed: int = 0,
        faults: FaultSpec | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        lean: bool = False,
    ) -> None:
        self.app = EmulatorApp(token=token, seed=seed, faults=faults, lean=lean)
        self.host = host
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="emulator", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The track endpoint."""
        return track_url(self.host, self._port)

    @property
    def base_url(self) -> str:
        return self.url.split("/open_api/")[0]

    def start(self) -> EmulatorThread:
        self._thread.start()
        self._server = self._run(start_server(self.app.handle, self.host, self._port))
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            server = self._server

            async def close() -> None:
                server.close()
                await _cancel_connections()
                await asyncio.wait_for(server.wait_closed(), 2)

            try:
                self._run(close())
            except TimeoutError:
                pass
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self, coro: Awaitable[T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return future.result(10)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the emulator's loop (safe access to its state) and return the result."""

        async def run() -> T:
            return fn()

        return self._run(run())

    def stats(self) -> dict[str, Any]:
        return self.call(self.app.stats)

    def events(self) -> list[dict[str, Any]]:
        return self.call(lambda: self.app.events()["events"])

    def set_faults(self, spec: FaultSpec | str, seed: int | None = None) -> None:
        parsed = FaultSpec.parse(spec) if isinstance(spec, str) else spec
        self.call(lambda: self.app.set_faults(parsed, seed))

    def reset(self) -> None:
        self.call(self.app.reset)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    *,
    host: str,
    port: int,
    token: Secret | None = None,
    seed: int = 0,
    faults: FaultSpec | None = None,
    on_ready: Callable[[str], None] | None = None,
    lean: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM; `on_ready` gets the track URL once listening."""

    async def main() -> None:
        app = EmulatorApp(token=token, seed=seed, faults=faults, lean=lean)
        try:
            server = await start_server(app.handle, host, port)
        except OSError as exc:
            raise ConfigError(f"emulator cannot listen on {host}:{port}: {exc.strerror}") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready(track_url(host, server.sockets[0].getsockname()[1]))
        async with server:
            await stop.wait()
            server.close()
            await _cancel_connections()

    asyncio.run(main())
