"""What the user sees: progress on stderr and the summary."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta

import orjson
import pytest
from rich.console import Console

from tiktok_sender.console import render_run
from tiktok_sender.delivery.progress import BarProgress, LogProgress, progress_for
from tiktok_sender.delivery.run_state import RunResult


def test_progress_bar_shows_events_per_second() -> None:
    clock = [0.0]
    stream = io.StringIO()
    bar = BarProgress(Console(file=stream, force_terminal=True, width=120), clock=lambda: clock[0])
    bar.start(1000)
    clock[0] = 2.0
    bar.advance(500)
    bar.finish()
    last = stream.getvalue().rstrip("\n").split("\r")[-1]
    assert "500/1,000 events" in last and "250 events/s" in last and "0:00:02" in last


def test_progress_is_log_lines_off_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(progress_for(io.StringIO()), LogProgress)
    clock = [0.0]
    progress = LogProgress(every=5.0, clock=lambda: clock[0])
    progress.start(1000)
    clock[0] = 5.0
    with caplog.at_level(logging.INFO, logger="tiktok_sender"):
        progress.advance(500)
        progress.finish()
    assert caplog.messages == ["progress: 500/1000 events, 100 events/s"]


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
