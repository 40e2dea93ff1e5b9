"""What a run reads is what is new since the last complete run plus the events still open
(`warehouse.pending`), and that is exactly the set the whole-history query gives.

Timelines are replayed against a real warehouse (DuckDB and PostgreSQL): builds append rows with a
rising outbox_seq and events of every age, runs of every kind write receipts and run rows the way
`sender push` does (complete runs mark the outbox_seq they read through; crashed, limited and
test runs do not), time moves on by hours and days, and the outbox is once replaced by an older
copy. After every step, for both terminal sets (with and without --retry-rejected) and for
unsharded and sharded runs, the rows the window hands out equal the rows of `--rescan`. The end to
end test drives the real `sender push` through failures, a --limit run and new builds."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from sender_harness import PROFILES_YML, Project, base_env, make_outbox
from warehouse_testkit import ENGINES, Engine, make_engine

from tiktok_emulator import EmulatorThread
from tiktok_sender.shard import Shard
from tiktok_sender.tables.receipts import DELIVERED, EXPIRED, FAILED, RECEIPT_SCHEMA, REJECTED
from tiktok_sender.warehouse import open_warehouse
from tiktok_sender.warehouse.base import SqlWarehouse
from tiktok_sender.warehouse.pending import PendingQuery

pytest_plugins = ["pg_fixtures"]

STANDARD = (DELIVERED, REJECTED, EXPIRED)
RETRY_REJECTED = (DELIVERED, EXPIRED)
SHARDS = (None, Shard(1, 2), Shard(2, 2))
DAY = 86400


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request.param, request, tmp_path)


def keys(warehouse: SqlWarehouse, query: PendingQuery) -> set[tuple[str, str, str]]:
    reader = warehouse.open_pending(query, 97)
    out: set[tuple[str, str, str]] = set()
    try:
        while (batch := reader.next()) is not None:
            rows = batch.select(["event_source_id", "event", "event_id"]).to_pylist()
            out.update((r["event_source_id"], r["event"], r["event_id"]) for r in rows)
    finally:
        reader.close()
    return out


@dataclass
class Timeline:
    """A replayed history: builds, runs and the passing of time, on one warehouse."""

    engine: Engine
    rng: random.Random
    offset_s: int = 0  # simulated now = real now + offset
    next_i: int = 0
    runs: int = 0
    windowed: Counter[str] = field(default_factory=Counter)

    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=self.offset_s)

    def build(self) -> None:
        """Append 0-40 rows as one build, aged from minutes to 40 days (some beyond any age
        limit: late loads)."""
        n = self.rng.randint(0, 40)
        if n:
            age = self.rng.choice([60, 3600, 2 * DAY, 10 * DAY, 40 * DAY])
            self.engine.outbox.add(n, start=self.next_i, age_s=age - self.offset_s)
            self.next_i += n

    def run(self) -> None:
        """One run as `sender push` makes it: plan, read, a receipt per row read; complete runs
        mark what they read through. Which kind of run, its shard, its --max-age-days and each
        event's fate are drawn."""
        rng = self.rng
        kind = rng.choices(["complete", "crashed", "limited", "test"], [6, 2, 1, 1])[0]
        retry = rng.random() < 0.15
        shard = rng.choice(SHARDS)
        max_age = rng.choice([7.0, 28.0])
        warehouse = open_warehouse(self.engine.target())
        try:
            warehouse.ensure_delivery_tables()
            terminal = RETRY_REJECTED if retry else STANDARD
            limit = rng.randint(1, 15) if kind == "limited" else None
            query = warehouse.plan_pending(terminal, limit, shard)
            read = sorted(keys(warehouse, query))
            if kind == "crashed":
                read = read[: rng.randint(0, len(read))]
            now = self.now()
            self.runs += 1
            run_id = f"run-{self.runs:03d}"
            times = dict(warehouse.query(f"select event_id, event_time from {warehouse.outbox}")[1])
            expire_before = now.replace(tzinfo=UTC).timestamp() - max_age * DAY
            statuses = [
                EXPIRED if times[k[2]] < expire_before
                else rng.choices([DELIVERED, FAILED, REJECTED], [6, 3, 1])[0]
                for k in read
            ]
            test_code = "TEST123" if kind == "test" else None
            warehouse.append_receipts(receipts(run_id, read, times, statuses, now, test_code))
            complete = kind in ("complete", "test") and query.window is not None
            warehouse.insert_run({
                "run_id": run_id, "started_at": now, "finished_at": now, "outcome": "success",
                "settings": orjson.dumps({"max_age_days": max_age, "retry_rejected": retry}).decode(),
                "dry_run": False, "test_event_code": test_code,
                "shard": str(shard) if shard is not None else None,
                "outbox_seq_through": query.window.through_seq if complete and query.window else None,
            })
        finally:
            warehouse.close()

    def restore_older_copy(self) -> None:
        """The outbox replaced by a copy from before its last build (a restore)."""
        self.engine.sql("delete from tiktok.tiktok_events_outbox where outbox_seq = "
                        "(select max(outbox_seq) from tiktok.tiktok_events_outbox)")

    def check(self) -> None:
        """For every terminal set and shard: the window's rows are the whole history's."""
        warehouse = open_warehouse(self.engine.target())
        try:
            for terminal in (STANDARD, RETRY_REJECTED):
                for shard in SHARDS:
                    planned = warehouse.plan_pending(terminal, None, shard)
                    whole = warehouse.plan_pending(terminal, None, shard, rescan=True)
                    assert whole.window is not None and whole.window.whole_history
                    assert keys(warehouse, planned) == keys(warehouse, whole), (terminal, shard)
                    assert warehouse.count_pending(planned) == len(keys(warehouse, whole))
                    if planned.window is not None and not planned.window.whole_history:
                        self.windowed[str(shard)] += 1
        finally:
            warehouse.close()


def receipts(run_id: str, read: list[tuple[str, str, str]], times: dict[str, int],
             statuses: list[str], now: datetime, test_code: str | None) -> pa.Table:
    n = len(read)
    columns = {
        "receipt_id": [f"{run_id}-{i:09d}" for i in range(n)],
        "run_id": [run_id] * n,
        "event_id": [k[2] for k in read],
        "event": [k[1] for k in read],
        "event_time": [times[k[2]] for k in read],
        "status": statuses,
        "attempt": [1] * n,
        "test_event_code": [test_code] * n,
        "sent_at": [now] * n,
        "event_source_id": [k[0] for k in read],
    }
    return pa.Table.from_pydict(
        {f.name: columns.get(f.name, [None] * n) for f in RECEIPT_SCHEMA}, schema=RECEIPT_SCHEMA)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_window_reads_exactly_what_the_whole_history_query_reads(engine: Engine, seed: int) -> None:
    timeline = Timeline(engine, random.Random(seed))
    timeline.build()
    for step in range(22):
        action = timeline.rng.choices(["build", "run", "hours", "days"], [3, 4, 1, 1])[0]
        if step == 15:
            timeline.restore_older_copy()
        elif action == "build":
            timeline.build()
        elif action == "run":
            timeline.run()
        else:
            timeline.offset_s += 3600 * timeline.rng.randint(1, 12) * (24 if action == "days" else 1)
        timeline.check()
    # the window was in use (not the whole history) for each kind of shard, most of the time
    assert min(timeline.windowed[str(s)] for s in SHARDS) >= 5, timeline.windowed


def test_what_a_run_reads_grows_with_the_new_work_not_the_history(engine: Engine) -> None:
    """After a complete run over 3,000 events (delivered when they were young; ten days old
    now), a build of 10 makes a window of those 10, and the receipts it reads are bounded by
    age: none of the 3,000 of the history."""
    engine.outbox.add(3000, age_s=10 * DAY)
    timeline = Timeline(engine, random.Random(0))
    warehouse = open_warehouse(engine.target())
    try:
        warehouse.ensure_delivery_tables()
        query = warehouse.plan_pending(STANDARD, None)
        assert query.window is not None and query.window.whole_history
        read = sorted(keys(warehouse, query))
        times = dict(warehouse.query(f"select event_id, event_time from {warehouse.outbox}")[1])
        warehouse.append_receipts(receipts("r1", read, times, [DELIVERED] * len(read), timeline.now(), None))
        warehouse.insert_run({"run_id": "r1", "started_at": timeline.now(), "outcome": "success",
                              "settings": '{"max_age_days": 7}', "dry_run": False,
                              "outbox_seq_through": query.window.through_seq})
    finally:
        warehouse.close()
    engine.outbox.add(10, start=3000, age_s=60)
    warehouse = open_warehouse(engine.target())
    try:
        query = warehouse.plan_pending(STANDARD, None)
        window = query.window
        assert window is not None and window.mark_run == "r1"
        assert warehouse.count_pending(query) == 10
        newest = times[max(times, key=lambda k: times[k])]
        assert window.open_since is not None and window.receipts_since == window.open_since
        assert window.receipts_since > newest + 2 * DAY  # 7 days + slack back from now
        _, rows = warehouse.query(
            f"select count(*) from {warehouse.receipts} where event_time >= {window.receipts_since}")
        assert rows[0][0] == 0  # the 3,000 receipts of the history are all outside the window
    finally:
        warehouse.close()


def test_an_outbox_without_outbox_seq_is_read_whole(engine: Engine) -> None:
    engine.outbox.add(20)
    engine.sql("alter table tiktok.tiktok_events_outbox drop column outbox_seq")
    warehouse = open_warehouse(engine.target())
    try:
        query = warehouse.plan_pending(STANDARD, None)
        assert query.window is None
        assert warehouse.count_pending(query) == 20
    finally:
        warehouse.close()


def test_an_outbox_seq_that_is_not_an_integer_is_refused(engine: Engine) -> None:
    engine.sql("alter table tiktok.tiktok_events_outbox drop column outbox_seq")
    engine.sql("alter table tiktok.tiktok_events_outbox add column outbox_seq varchar")
    warehouse = open_warehouse(engine.target())
    try:
        with pytest.raises(Exception, match="outbox_seq is .*it must be an integer"):
            warehouse.check_outbox()
    finally:
        warehouse.close()


def through(project: Project) -> list[int | None]:
    return [r["outbox_seq_through"] for r in project.outbox.runs()]


def test_push_marks_complete_runs_and_reads_new_and_open_events(
    tmp_path: Path, emulator: EmulatorThread
) -> None:
    """The real `sender push`: a run with failed events marks what it read through (the failures
    stay open), the next reads the new build and the open events only; a --limit run marks
    nothing; every event reaches the API once."""
    (tmp_path / "profiles.yml").write_text(PROFILES_YML)
    db = tmp_path / "warehouse.duckdb"
    outbox = make_outbox(db, 100)
    project = Project(tmp_path, outbox, {**base_env(tmp_path, db), "TIKTOK_API_URL": emulator.url})

    def seq() -> int:
        return outbox.execute("select max(outbox_seq) from tiktok.tiktok_events_outbox")[0][0]


    emulator.set_faults("poison_5xx=evt-00000003|evt-00000010")
    first = project.sender("push", "--json", "--max-attempts", "2")
    assert first.returncode == 1, first.stderr
    assert (first.json()["failed"], first.json()["delivered"], first.json()["held"]) == (2, 98, 0)
    assert through(project) == [seq()]

    emulator.set_faults("")
    outbox.add(30, start=100)
    second = project.sender("push", "--json", "--limit", "5")
    assert second.returncode == 0, second.stderr
    assert second.json()["pending"] == 5
    assert through(project)[-1] is None  # a limited run leaves the mark where it was

    third = project.sender("push", "--json")
    assert third.returncode == 0, third.stderr
    assert (third.json()["pending"], third.json()["delivered"]) == (27, 27)  # 30 - 5 + 2 open
    assert through(project)[-1] == seq()

    fourth = project.sender("push", "--json")
    assert fourth.json()["pending"] == 0 and through(project)[-1] == seq()
    rescan = project.sender("push", "--json", "--rescan", "--dry-run")
    assert rescan.json()["pending"] == 0
    assert Counter(e["receive_count"] for e in emulator.events()) == {1: 130}


def test_duckdb_gets_more_memory_only_for_many_receipt_keys_or_pending_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiktok_sender.warehouse import duckdb as duckdb_warehouse

    monkeypatch.setattr(duckdb_warehouse, "MANY_RECEIPT_KEYS", 5)
    outbox = make_outbox(tmp_path / "warehouse.duckdb", 10)
    (tmp_path / "profiles.yml").write_text(PROFILES_YML)
    engine = Engine("duckdb", outbox, tmp_path)

    def memory_limit(warehouse: SqlWarehouse) -> str:
        return str(warehouse.query("select current_setting('memory_limit')")[1][0][0])

    # a run of more pending events than its receipts may take at the default limit: 10 > 5, with
    # 16 MiB per receipt
    monkeypatch.setattr(duckdb_warehouse, "RECEIPT_BYTES", 2**24)
    for many_pending, raised in ((10, False), (5, True)):
        monkeypatch.setattr(duckdb_warehouse, "MANY_PENDING_EVENTS", many_pending)
        warehouse = open_warehouse(engine.target())
        try:
            warehouse.ensure_delivery_tables()
            default = memory_limit(warehouse)
            pending = warehouse.count_pending(warehouse.plan_pending(STANDARD, None))
            assert pending == 10 and memory_limit(warehouse) == default
            warehouse.expect_receipts(pending)
            assert (memory_limit(warehouse) != default) is raised
        finally:
            warehouse.close()
    monkeypatch.setattr(duckdb_warehouse, "MANY_PENDING_EVENTS", 10)

    warehouse = open_warehouse(engine.target())
    try:
        default = memory_limit(warehouse)
        query = warehouse.plan_pending(STANDARD, None)  # no receipts yet: the default is enough
        assert query.window is not None and query.window.whole_history
        assert memory_limit(warehouse) == default
        read = sorted(keys(warehouse, query))
        times = dict(warehouse.query(f"select event_id, event_time from {warehouse.outbox}")[1])
        now = datetime.now(UTC).replace(tzinfo=None)
        warehouse.append_receipts(receipts("r1", read, times, [FAILED] * len(read), now, None))
        warehouse.insert_run({"run_id": "r1", "started_at": now, "outcome": "failures",
                              "settings": '{"max_age_days": 7}', "dry_run": False,
                              "outbox_seq_through": query.window.through_seq})
        # a window: the ten open (failed) receipts' keys, more than 5
        assert not warehouse.plan_pending(STANDARD, None).window.whole_history  # type: ignore[union-attr]
        assert memory_limit(warehouse) != default
    finally:
        warehouse.close()

    # each run opens the warehouse with the default limit again
    warehouse = open_warehouse(engine.target())
    try:
        warehouse.plan_pending(STANDARD, None, rescan=True)  # the whole history: no terminal key
        assert memory_limit(warehouse) == default
    finally:
        warehouse.close()

    # ten terminal receipts: the whole history holds their keys, more than 5
    warehouse = open_warehouse(engine.target())
    try:
        later = datetime.now(UTC).replace(tzinfo=None)
        warehouse.append_receipts(receipts("r2", read, times, [DELIVERED] * len(read), later, None))
        assert memory_limit(warehouse) == default
        warehouse.plan_pending(STANDARD, None, rescan=True)
        assert memory_limit(warehouse) != default
    finally:
        warehouse.close()
    # a window holds both: ten terminal and ten open keys, more than 15 together
    monkeypatch.setattr(duckdb_warehouse, "MANY_RECEIPT_KEYS", 15)
    warehouse = open_warehouse(engine.target())
    try:
        assert not warehouse.plan_pending(STANDARD, None).window.whole_history  # type: ignore[union-attr]
        assert memory_limit(warehouse) != default
    finally:
        warehouse.close()
