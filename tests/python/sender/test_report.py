"""What the user sees: progress on stderr and the summary."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import orjson

from tiktok_sender.console import BarProgress, render_run
from tiktok_sender.delivery.run_state import RunResult


def test_progress_bar_shows_events_per_second() -> None:
    clock = [0.0]
    stream = io.StringIO()
    bar = BarProgress(stream, clock=lambda: clock[0])
    bar.start(1000)
    clock[0] = 2.0
    bar.advance(500)
    bar.finish()
    last = stream.getvalue().rstrip("\n").split("\r")[-1]
    assert "500/1,000 events" in last and "250 events/s" in last and "#" * 15 in last


def test_summary_text_and_json() -> None:
    start = datetime(2026, 1, 1)
    result = RunResult(run_id="r1", dry_run=False, api_url="https://x/", test_event_code=None,
                       started_at=start, finished_at=start + timedelta(seconds=2),
                       outcome="failures")
    result.counts.pending = result.counts.sent = 10
    result.counts.delivered, result.counts.rejected = 9, 1
    result.problems[("rejected", 40002, "data.0.event_id: bad")] += 1
    data = orjson.loads(render_run(result, as_json=True))
    assert data["exit_code"] == 1 and data["failure_rate"] == 0.1 and data["events_per_s"] == 5.0
    text = render_run(result, as_json=False)
    assert "sender push: failures (exit 1)" in text and "40002" in text
    result.max_failure_rate = 0.1
    assert result.exit_code == 0
