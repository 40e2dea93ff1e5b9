"""The state of a `sender push` run: counts, outcome, exit code, and the progress interface."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from tiktok_sender.errors import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, SenderError


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, events: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, events: int) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(frozen=True)
class Clock:
    """A run's clock: real time, or a replayed instant that moves on at real speed.

    `sender push --clock-start` (a flag only) starts it at a past instant, so that
    a replay of history (the demo's hourly cadence, tests that replay time) stamps its receipts
    and runs, and judges event age, as a run at that instant would have. Production runs never
    set it; a run that did says so in its log and in the runs table's settings."""

    offset_s: float = 0.0

    @classmethod
    def starting_at(cls, start: datetime | None) -> Clock:
        if start is None:
            return cls()
        aware = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
        return cls(aware.timestamp() - time.time())

    def time(self) -> float:
        """Unix seconds."""
        return time.time() + self.offset_s

    def utcnow(self) -> datetime:
        """Naive UTC, as receipts and runs store it."""
        return datetime.fromtimestamp(self.time(), UTC).replace(tzinfo=None)


REAL_CLOCK = Clock()


@dataclass
class RunCounts:
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    expired: int = 0
    requests: int = 0
    held: int = 0  # never sent in this run: their event source stopped; still pending

    @property
    def done(self) -> int:
        return self.delivered + self.rejected + self.failed + self.expired + self.held


@dataclass
class RunResult:
    """What a run did; rendered by the CLI, stored (minus `error`) in the runs table."""

    run_id: str
    dry_run: bool
    api_url: str
    test_event_code: str | None
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "running"
    message: str | None = None
    counts: RunCounts = field(default_factory=RunCounts)
    groups: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: Counter[tuple[str, int | None, str]] = field(default_factory=Counter)
    stopped_sources: dict[tuple[str, str], str] = field(default_factory=dict)  # -> why
    error: SenderError | None = None
    max_failure_rate: float = 0.0
    clock: Clock = field(default=REAL_CLOCK, repr=False, compare=False)

    @property
    def elapsed_s(self) -> float:
        end = self.finished_at or self.clock.utcnow()
        return max((end - self.started_at).total_seconds(), 1e-9)

    @property
    def events_done(self) -> int:
        c = self.counts
        return c.sent + c.rejected + c.expired if self.dry_run else c.done

    @property
    def failure_rate(self) -> float:
        c = self.counts
        considered = (c.sent if self.dry_run else c.delivered + c.failed + c.held) + c.rejected
        return (c.rejected + c.failed + c.held) / considered if considered else 0.0

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        if self.outcome == "interrupted":
            return EXIT_INTERRUPTED
        return EXIT_FAILURES if self.failure_rate > self.max_failure_rate else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "run_id": self.run_id,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "dry_run": self.dry_run,
            "message": self.message,
            "api_url": self.api_url,
            "test_event_code": self.test_event_code,
            "started_at": self.started_at.isoformat() + "Z",
            "finished_at": self.finished_at.isoformat() + "Z" if self.finished_at else None,
            "elapsed_s": round(self.elapsed_s, 3),
            "events_per_s": round(self.events_done / self.elapsed_s, 1),
            **asdict(c),
            "failure_rate": round(self.failure_rate, 6),
            "max_failure_rate": self.max_failure_rate,
            "groups": [
                {"event_source": s, "event_source_id": i, "events": n}
                for (s, i), n in sorted(self.groups.items())
            ],
            "stopped_sources": [
                {"event_source": s, "event_source_id": i, "reason": reason}
                for (s, i), reason in sorted(self.stopped_sources.items())
            ],
            "problems": [
                {"status": s, "api_code": code, "message": m, "events": n}
                for (s, code, m), n in self.problems.most_common(10)
            ],
        }
