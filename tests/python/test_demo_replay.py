"""`make demo`'s replay of scheduled builds and pushes (scripts/demo_replay.py), on a short
schedule: 36 hours back, every 12 hours, then hourly over the last 3, at a pinned instant.

Asserted: every event the replay put in the outbox reached the emulator once and has one
`delivered` receipt stamped by the replayed clock; after the backfill, every event went out within
the latency goal and the monitors pass over the day after it; and a single rebuild at the last
instant sends nothing the replay missed: each event it would send was sent, with the same time,
cell and keys, and each event only the replay sent is one the rebuild excludes, with its reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from scripts_loader import load_script

from dbt_harness import DEMO_AS_OF, PROJECT_ROOT, copy_project, dbt_env, run_dbt
from tiktok_emulator import EmulatorThread
from tiktok_sender.settings import Secret

TOKEN = "replay-token-7f3a2c"
AS_OF = datetime.fromisoformat(DEMO_AS_OF)
HISTORY, EARLY_EVERY, HOURLY_SINCE = timedelta(hours=36), timedelta(hours=12), timedelta(hours=3)
# the monitors judge the day after the backfill (the demo's own schedule starts 8 days back, before
# their 7-day window)
AUDIT_VARS = json.dumps({"tiktok_as_of": DEMO_AS_OF, "tiktok_monitor_lookback_days": 1})
KEYS = ("event_time", "experiment_cell", "email_sha256", "phone_sha256", "external_id_sha256", "ttclid", "ttp",
        "idfa", "gaid")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, EmulatorThread, Path]]:
    work = tmp_path_factory.mktemp("demo-replay")
    project = copy_project(work / "project")
    subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "generate_demo_data.py"),
         "--out", str(project / "seeds" / "demo"), "--as-of", DEMO_AS_OF],
        check=True, capture_output=True,
    )
    rebuilt = copy_project(work / "rebuilt")
    shutil.rmtree(rebuilt / "seeds" / "demo")
    shutil.copytree(project / "seeds" / "demo", rebuilt / "seeds" / "demo")
    warehouse = work / "replayed.duckdb"

    replay = load_script("demo_replay")
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    with EmulatorThread(token=Secret(TOKEN), seed=5) as emulator:
        try:
            os.environ.update(dbt_env(warehouse))
            os.chdir(project)
            env = {**os.environ, "TIKTOK_ACCESS_TOKEN": TOKEN, "TIKTOK_API_URL": emulator.url}
            replay.replay(env, now=AS_OF, history=HISTORY, early_every=EARLY_EVERY, hourly_since=HOURLY_SINCE)
        finally:
            replay.close_duckdb()
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
        run_dbt(["build", "--vars", json.dumps({"tiktok_as_of": DEMO_AS_OF})], work / "rebuilt.duckdb",
                project=rebuilt)
        yield warehouse, work / "rebuilt.duckdb", emulator, project


def rows(path: Path, sql: str) -> list[dict[str, object]]:
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_every_replayed_event_reached_tiktok_once_on_the_replayed_clock(
    replayed: tuple[Path, Path, EmulatorThread, Path],
) -> None:
    warehouse, _, emulator, _ = replayed
    outbox = {r["event_id"]: r
              for r in rows(warehouse, "select event_id, converted_at from tiktok.tiktok_events_outbox")}
    receipts = rows(warehouse, "select event_id, status, sent_at from tiktok.tiktok_delivery_receipts")
    assert len(outbox) > 1000
    assert sorted(r["event_id"] for r in receipts) == sorted(outbox)  # one receipt per event
    assert {r["status"] for r in receipts} == {"delivered"}
    accepted = emulator.events()
    assert sorted(e["payload"]["event_id"] for e in accepted) == sorted(outbox)
    assert emulator.stats()["duplicates"] == 0

    first = AS_OF - HISTORY
    backfill = [r for r in receipts if r["sent_at"] < first + timedelta(minutes=5)]
    assert len(backfill) > 1000  # the first run sent the 28 days before it
    for r in receipts:
        assert first <= r["sent_at"] <= AS_OF + timedelta(minutes=5)  # stamped by the replayed clock
        # a build takes conversions up to tiktok_future_tolerance_minutes ahead of its instant
        assert r["sent_at"] >= outbox[r["event_id"]]["converted_at"] - timedelta(minutes=10)
    later = [r["sent_at"] - outbox[r["event_id"]]["converted_at"] for r in receipts
             if outbox[r["event_id"]]["converted_at"] >= first]
    assert len(later) > 20
    assert max(later) < timedelta(hours=24)  # tiktok_latency_goal_hours


def test_the_monitors_pass_after_the_backfill(replayed: tuple[Path, Path, EmulatorThread, Path]) -> None:
    warehouse, _, _, project = replayed
    run_dbt(["build", "--selector", "audit", "--vars", AUDIT_VARS], warehouse, project=project)
    output = run_dbt(["test", "--select", "tag:monitor", "--vars", AUDIT_VARS], warehouse, project=project)
    assert "PASS=4" in output


def test_a_rebuild_at_the_last_instant_sends_nothing_the_replay_missed(
    replayed: tuple[Path, Path, EmulatorThread, Path],
) -> None:
    warehouse, rebuilt, _, _ = replayed
    columns = ", ".join(("event_id", *KEYS))
    sent = {r["event_id"]: r for r in rows(warehouse, f"select {columns} from tiktok.tiktok_events_outbox")}
    would_send = {r["event_id"]: r for r in rows(rebuilt, f"select {columns} from tiktok.tiktok_events_outbox")}
    assert set(would_send) <= set(sent)
    for event_id, row in would_send.items():
        assert sent[event_id] == row
    excluded = {r["event_id"]: r for r in rows(
        rebuilt, "select event_id, exclusion_reason, converted_at from tiktok.tiktok_events_excluded")}
    only_replayed = set(sent) - set(would_send)
    assert only_replayed <= set(excluded)  # each one excluded by the rebuild, with its reason
    too_old = [excluded[e] for e in only_replayed if excluded[e]["exclusion_reason"] == "event_too_old"]
    assert too_old  # the replay started earlier, when they were young enough
    assert all(r["converted_at"] < AS_OF - timedelta(days=28) for r in too_old)
