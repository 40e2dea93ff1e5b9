"""Small pieces every warehouse uses: quoting names, one-line driver errors, waiting for the
delivery lease. Nothing here imports a driver or another module of the package, so `relations`
can use the quoting without importing the warehouses."""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from tiktok_sender.errors import ConfigError, WarehouseBusyError, WarehouseError

log = logging.getLogger("tiktok_sender")
P = ParamSpec("P")
T = TypeVar("T")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,127}")


def quote_identifier(name: str) -> str:
    """`name` double-quoted after checking it is a plain identifier."""
    if not _IDENTIFIER.fullmatch(name):
        raise ConfigError(f"invalid schema or table name: {name!r}")
    return f'"{name}"'


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else exc.__class__.__name__


class _HasDriverErrors(Protocol):
    driver_errors: tuple[type[BaseException], ...]

    def error_text(self, exc: BaseException) -> str: ...


W = TypeVar("W", bound=_HasDriverErrors)


def wrap_errors(
    what: str,
) -> Callable[[Callable[Concatenate[W, P], T]], Callable[Concatenate[W, P], T]]:
    """Turn a driver error escaping a warehouse method into one clear WarehouseError."""

    def decorate(fn: Callable[Concatenate[W, P], T]) -> Callable[Concatenate[W, P], T]:
        @functools.wraps(fn)
        def wrapper(self: W, /, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return fn(self, *args, **kwargs)
            except self.driver_errors as exc:
                raise WarehouseError(f"{what} failed: {self.error_text(exc)}") from None

        return wrapper

    return decorate


class LeaseHeld(Exception):
    """Raised by a lease attempt when another process holds the lease; carries who, if known."""


def poll_lease(
    attempt: Callable[[], T],
    *,
    timeout: float,
    describe: str,
    hint: str = "another `sender push` is running, or a dbt build or DuckDB session holds it",
    abort: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call `attempt` until it stops raising LeaseHeld, `timeout` seconds have passed or `abort`
    is set (a signal while waiting). `hint` says, in the final error, who usually holds it."""
    deadline = clock() + max(timeout, 0.0)
    delay = 0.05
    abort = abort or threading.Event()
    announced = False
    while True:
        try:
            return attempt()
        except LeaseHeld as held:
            remaining = deadline - clock()
            if not announced and remaining > 0 and not abort.is_set():
                log.info("%s is in use by another process (%s); waiting up to %g s",
                         describe, held, timeout)
                announced = True
            if remaining <= 0 or abort.is_set():
                waited = f"; waited {timeout:g} s" if timeout > 0 else ""
                raise WarehouseBusyError(
                    f"{describe} is in use by another process ({held}){waited}: {hint}; "
                    "try again later or wait with --lock-timeout"
                ) from None
            abort.wait(min(delay, remaining))
            delay = min(delay * 2, 1.0)
