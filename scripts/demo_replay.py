"""Replay the demo's last days as production runs them: builds and `sender push` on a schedule.

The demo data covers a year up to now. A first build and push over it would deliver 28 days of
history at once, with latencies of hundreds of hours that no production team sees once it runs on
a schedule. So `make demo` replays the last days instead: every build is pinned to its instant
(var `tiktok_as_of`) and every push runs on a clock started at that instant (`sender push
--clock-start`), so receipts carry the times a scheduled deployment would have written.

Schedule (UTC): the first run 8 days ago (the backfill of the 28 days before it, outside the
monitors' 7-day window), then every 6 hours, hourly over the last day, and a last run now. The
first run is a whole `dbt build` (seeds, models, data tests); the scheduled ones run the models
that feed the outbox (`dbt run --select +tiktok_events_outbox`), in one process so each costs the
models' time, not dbt's start-up; the last one is a whole `dbt build` again, with no pinned instant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

BIN = Path(sys.executable).parent
HISTORY = timedelta(days=8)  # the first run: before the monitors' window (tiktok_monitor_lookback_days)
EARLY_EVERY = timedelta(hours=6)
HOURLY_SINCE = timedelta(days=1)
FEEDS_OUTBOX = "+tiktok_events_outbox"


def schedule(now: datetime, history: timedelta = HISTORY, early_every: timedelta = EARLY_EVERY,
             hourly_since: timedelta = HOURLY_SINCE) -> Iterator[datetime]:
    """The instants of the replayed runs before `now` (naive UTC, on the hour), oldest first."""
    top = now.replace(minute=0, second=0, microsecond=0)
    at = top - history
    while at < top - hourly_since:
        yield at
        at += early_every
    at = top - hourly_since
    while at < now:
        yield at
        at += timedelta(hours=1)


class Builds:
    """dbt in this process (dbtRunner), parsed once. dbt-duckdb keeps the database open in the
    process after an invocation; it is closed after each, so that `sender push` (another process)
    can open the file."""

    def __init__(self) -> None:
        from dbt.cli.main import dbtRunner

        parsed = dbtRunner().invoke(["parse", "--quiet"])
        if not parsed.success:
            raise SystemExit(f"dbt parse failed: {parsed.exception}")
        self._dbt = dbtRunner(manifest=parsed.result)

    def __call__(self, *args: str, at: datetime | None = None) -> None:
        argv = [*args, "--quiet"]
        if at is not None:
            argv += ["--vars", json.dumps({"tiktok_as_of": at.isoformat(sep=" ")})]
        try:
            result = self._dbt.invoke(argv)
        finally:
            close_duckdb()
        if not result.success:
            raise SystemExit(f"dbt {' '.join(args)} at {at or 'now'} failed: {result.exception or 'see above'}")


def close_duckdb() -> None:
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def push(env: Mapping[str, str], at: datetime | None) -> dict[str, object]:
    argv = [str(BIN / "sender"), "push", "--json"]
    if at is not None:
        argv += ["--clock-start", at.isoformat(sep=" ")]
    done = subprocess.run(argv, env=env, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"sender push at {at or 'now'} exited {done.returncode}")
    return json.loads(done.stdout)


def replay(env: Mapping[str, str], now: datetime | None = None, **spacing: timedelta) -> dict[str, object]:
    """Run the schedule against the API of `env` (TIKTOK_API_URL); return the last push's summary.

    `now` pins the last run too (tests); by default it is the real now. `spacing`: `schedule`'s."""
    pinned = now
    now = now or datetime.now(UTC).replace(tzinfo=None)
    build = Builds()
    instants = list(schedule(now, **spacing))
    print(f"replaying {len(instants)} scheduled runs from {instants[0]:%Y-%m-%d %H:%M} UTC, then one now:"
          " build pinned to the instant, push on a clock started at it", flush=True)
    day: list[dict[str, object]] = []
    for n, at in enumerate(instants):
        if n == 0:
            build("build", at=at)
        else:
            build("run", "--select", FEEDS_OUTBOX, at=at)
        summary = push(env, at)
        if n == 0:
            print(f"  {at:%Y-%m-%d %H:%M}  first run: {_line([summary])}", flush=True)
            continue
        day.append(summary)
        if n + 1 == len(instants) or instants[n + 1].date() != at.date():
            print(f"  {at:%Y-%m-%d}        {len(day):>2} runs: {_line(day)}", flush=True)
            day = []
    build("build", at=pinned)
    summary = push(env, pinned)
    print(f"  now               last run: {_line([summary])}", flush=True)
    return summary


def _line(summaries: list[dict[str, object]]) -> str:
    """The runs' counts added up: '17 sent, 17 delivered' (and any rejected, failed, expired)."""
    def total(key: str) -> int:
        return sum(int(s.get(key) or 0) for s in summaries)  # type: ignore[call-overload]

    parts = [f"{total('sent')} sent", f"{total('delivered')} delivered"]
    parts += [f"{total(k)} {k}" for k in ("rejected", "failed", "expired") if total(k)]
    return ", ".join(parts)


if __name__ == "__main__":
    # standalone: against the API of TIKTOK_API_URL / TIKTOK_ACCESS_TOKEN (demo_push.py starts one)
    replay(os.environ)
