"""A push's progress on stderr: a rich progress bar on a terminal, plain log lines otherwise (CI,
pipes). Both implement `run_state.Progress`, the interface the delivery code calls."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from tiktok_sender.delivery.run_state import Progress

log = logging.getLogger("tiktok_sender")


class BarProgress:
    """A one-line progress bar: events sent of those pending, events/s since the start, the time
    elapsed; redrawn at most 10 times a second."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = 0.0
        self._bar = RichProgress(
            BarColumn(bar_width=30),
            TextColumn("{task.completed:,}/{task.total:,} events"),
            TextColumn("{task.fields[rate]:,.0f} events/s"),
            TimeElapsedColumn(),
            console=console,
            get_time=clock,
            refresh_per_second=10,
        )
        self._task: TaskID | None = None

    def start(self, total: int) -> None:
        self._started = self._clock()
        self._task = self._bar.add_task("push", total=total, rate=0.0)
        self._bar.start()

    def advance(self, events: int) -> None:
        if self._task is None:
            return
        self._bar.advance(self._task, events)
        done = self._bar.tasks[0].completed
        self._bar.update(self._task, rate=done / max(self._clock() - self._started, 1e-9))

    def finish(self) -> None:
        self._bar.stop()


class LogProgress:
    """Plain progress log lines (CI, pipes), at most one every `every` seconds."""

    def __init__(self, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._total = self._done = 0
        self._started = self._logged = 0.0

    def start(self, total: int) -> None:
        self._total, self._done = total, 0
        self._started = self._logged = self._clock()

    def advance(self, events: int) -> None:
        self._done += events
        now = self._clock()
        if now - self._logged >= self._every:
            self._logged = now
            rate = self._done / max(now - self._started, 1e-9)
            log.info("progress: %d/%d events, %.0f events/s", self._done, self._total, rate)

    def finish(self) -> None:
        pass


def progress_for(stream: TextIO = sys.stderr) -> Progress:
    """A bar when `stream` is a terminal, else log lines."""
    return BarProgress(Console(file=stream)) if stream.isatty() else LogProgress()
