"""When to send: the client-side rate limit, the shared pause after throttling, backoff delays."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

MAX_RETRY_AFTER = 900.0


async def sleep_unless(stop: asyncio.Event | None, seconds: float) -> None:
    """Sleep `seconds`, or less when `stop` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


def backoff_delay(
    retries: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `retries` (1-based): full jitter over an exponential
    ceiling, never less than the server's `Retry-After` (itself capped at 15 minutes)."""
    ceiling = min(cap, base * (2 ** (retries - 1)))
    delay = ceiling * (0.5 + 0.5 * rng())
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


class Pacer:
    """Gate every request passes: a token-bucket rate limit and a pause shared by all workers.

    A throttled response pauses every worker, not just the one that saw it, so a burst of
    throttling costs one backoff instead of one per request in flight.
    """

    def __init__(
        self,
        rate_limit: float | None,
        clock: Callable[[], float] = time.monotonic,
        stop: asyncio.Event | None = None,
    ) -> None:
        self._interval = 1.0 / rate_limit if rate_limit else 0.0
        self._clock = clock
        self._stop = stop
        self._next_slot = 0.0
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def wait(self) -> None:
        """Return when the next request may go, or as soon as `stop` is set."""
        while self._stop is None or not self._stop.is_set():
            now = self._clock()
            if self._paused_until > now:
                await sleep_unless(self._stop, self._paused_until - now)
                continue
            if self._interval:
                slot = max(self._next_slot, now)
                self._next_slot = slot + self._interval
                if slot > now:
                    await sleep_unless(self._stop, slot - now)
            return
