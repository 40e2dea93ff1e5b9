"""Replay a simulated day of late, duplicated and corrected first-party data against the dbt
project, `sender push` and the emulator, and compare what TikTok received with an independent
oracle (tests/python/timeline_replay.py, which documents the world and the rules).

Asserted: every conversion is sent exactly once under one key, or excluded with its reason, or
still waiting; the pixel's event_id is used whenever its session landed before the conversion
went out (the settle window holds a conversion back for it); a click id is carried whenever a
qualifying click landed in time; a mapping rename and a salt change with --full-refresh resend
nothing; nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import timeline_replay as tl

from tiktok_emulator import EmulatorThread
from tiktok_sender.settings import Secret

TOKEN = "timeline-token-4c1d9e"
@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread(token=Secret(TOKEN), seed=3) as emu:
        yield emu


def sender_env(workdir: Path) -> dict[str, str]:
    return tl.sender_env(workdir, TOKEN)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorThread):
    workdir = tmp_path_factory.mktemp("timeline")
    start = tl.start_of_replay(hours=26)
    world = tl.make_world(start, hours=26)
    builds = tl.default_schedule(start)
    replay = tl.Replay(workdir, emulator.url, sender_env(workdir))
    replay.run(world, builds)
    expected = tl.expected_outcomes(world, builds)
    received = tl.received_by_conversion(world, emulator.events())
    return replay, world, builds, expected, received


def test_every_conversion_is_sent_once_under_one_key_or_accounted_for(replayed):
    replay, _, _, expected, received = replayed
    outbox = {cid for (cid,) in replay.query(f"select conversion_id from {tl.SCHEMA}.tiktok_events_outbox")}
    waiting = dict(replay.query(f"select conversion_id, wait_reason from {tl.SCHEMA}.tiktok_events_waiting"))
    excluded = dict(replay.query(f"select conversion_id, exclusion_reason from {tl.SCHEMA}.tiktok_events_excluded"))
    assert set(received) <= set(expected), set(received) - set(expected)
    for conversion_id, want in expected.items():
        got = received.get(conversion_id, [])
        if want.state == "sent":
            assert len(got) == 1, (conversion_id, [g["payload"]["event_id"] for g in got])
            assert got[0]["receive_count"] == 1, (conversion_id, got[0]["receive_count"])
            assert conversion_id in outbox
        else:
            assert not got, (conversion_id, want, got)
            assert conversion_id not in outbox
        if want.state == "excluded":
            assert excluded.get(conversion_id) == want.reason, (conversion_id, excluded.get(conversion_id), want)
        if want.state == "waiting":
            assert conversion_id in waiting, conversion_id
    # nothing lost: every conversion the warehouse knows is in exactly one place
    (conversions,) = replay.query(f"select count(*) from {tl.SCHEMA}.int_conversions")[0]
    assert conversions == len(expected) == len(outbox) + len(waiting) + len(excluded)


def test_what_tiktok_received_is_what_the_oracle_expects(replayed):
    """Once per sent conversion, under the key, event name and click id of its send time."""
    _, _, _, expected, received = replayed
    assert tl.differences(expected, received) == []


def test_the_scenarios_end_as_documented(replayed):
    """The hand-written cases, spelled out (the oracle decides the rest)."""
    replay, _, _, expected, received = replayed
    state = {cid: (o.state, o.reason) for cid, o in expected.items()}
    key = {cid: received[cid][0]["payload"]["event_id"] for cid in received}
    # sessions up to 55 minutes late always make it (held back for them); a later one makes it
    # only if it lands before the first build after the settle window (LATE-9 does not)
    assert [key[f"order:LATE-{i}"] for i in range(6)] == [f"px-LATE-{i}" for i in range(6)]
    assert key["order:LATE-9"] == "purchase-LATE-9"
    assert key["order:NO-SESSION"] == "purchase-NO-SESSION"
    assert key["signup:SU-LATE"] == "px-SU-LATE"
    assert state["order:CANCEL-EARLY"] == ("excluded", "not_completed")
    assert state["order:CANCEL-LATE"] == ("sent", None)
    assert state["order:FX-FIX"] == ("sent", None) and key["order:FX-FIX"] == "px-FX-FIX"
    assert expected["order:CLICK-1"].ttclid == "E.C.P.CLICK-IN-TIME"
    assert expected["order:CLICK-2"].ttclid is None
    names = {cid: received[cid][0]["payload"]["event"] for cid in received if cid.startswith("order:")}
    assert {names[f"order:RENAMED-{i}"] for i in range(3)} == {"Purchase"}
    assert names["order:OK-0"] == "CompletePayment"
    observed = dict(replay.query(
        f"select conversion_id, cast(observed_value as double) from {tl.SCHEMA}.tiktok_events_outbox"))
    assert observed["order:REFUND"] == 70.0
    assert observed["order:DUP-2"] == 70.0
    assert observed["app_event:AE-SUB"] == 14.99


def test_settle_window_figures(replayed, record_property):
    """How many conversions waited, and what the wait added (quoted in the README)."""
    _, _, _, expected, _ = replayed
    figures = tl.settle_figures(expected)
    for name, value in figures.items():
        record_property(name, value)
    print("settle:", figures)
    assert figures["waited"] >= 10
    assert 0 < figures["added_p50_min"] <= figures["added_p90_min"] <= 60


def test_a_build_where_nothing_is_late_adds_no_wait(tmp_path, emulator):
    """The same orders with every session landing with its order: nothing waits."""
    start = tl.start_of_replay(hours=3)
    world = tl.World()
    full = tl.make_world(start, hours=3)
    for row in full.rows:
        if row.table == "web_sessions" and row.values["order_id"] and row.values["order_id"].startswith("LATE-"):
            order = next(r for r in full.rows if r.table == "orders" and r.values["order_id"] == row.values["order_id"])
            row = tl.Row(row.table, order.landed_at, row.values)
        world.rows.append(row)
    kept = {f"LATE-{i}" for i in range(10)} | {f"OK-{i}" for i in range(12)} | {f"HIST-{i}" for i in range(12)}
    world.rows = [r for r in world.rows if r.table != "orders" or r.values["order_id"] in kept]
    world.rows = [r for r in world.rows if r.table not in ("signups", "app_events", "subscriptions")]
    builds = [tl.Build(at=start + timedelta(hours=h)) for h in range(0, 4)]
    orders = {r.values["order_id"] for r in world.rows if r.table == "orders"}
    emulator.reset()
    replay = tl.Replay(tmp_path, emulator.url, sender_env(tmp_path))
    replay.run(world, builds)
    expected = tl.expected_outcomes(world, builds)
    figures = tl.settle_figures(expected)
    print("settle, nothing late:", figures)
    assert figures["waited"] == 0 and figures["sent"] == len(orders) == 34
    (waiting,) = replay.query(f"select count(*) from {tl.SCHEMA}.tiktok_events_waiting")[0]
    (outboxed,) = replay.query(f"select count(*) from {tl.SCHEMA}.tiktok_events_outbox")[0]
    assert waiting == 0 and outboxed == len(orders)
