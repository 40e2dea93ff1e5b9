"""`sender push` on PostgreSQL end to end: the real CLI in subprocesses, the repository's
`postgres` profile target, a database of its own per test on the session cluster (pg_fixtures),
the emulator on 127.0.0.1. The same behaviour as on DuckDB, and the lease PostgreSQL allows:
shards side by side, a second unsharded run refused, nothing lost to SIGKILL."""

from __future__ import annotations

import hashlib
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fault_matrix import SCENARIOS, Row, reconcile, run_scenario, table
from pg_harness import PG_PASSWORD, PgOutbox, make_pg_outbox, pg_project, with_password
from sender_harness import (
    PROFILES_YML,
    TOKEN,
    Project,
    accepted_ids,
    base_env,
    finish,
    make_outbox,
    one_line_error,
    start,
    wait_for,
)

from tiktok_emulator import EmulatorThread
from tiktok_sender.errors import EXIT_BUSY
from tiktok_sender.shard import shard_of
from tiktok_sender.tables.receipts import RECEIPT_COLUMNS
from tiktok_sender.warehouse.postgres import lease_key

pytest_plugins = ["pg_fixtures"]

BATCH, CONCURRENCY = 20, 4
PUSH = ("push", "--json", "--batch-size", str(BATCH), "--concurrency", str(CONCURRENCY))
OUTBOX = "tiktok.tiktok_events_outbox"
RECEIPTS = "tiktok.tiktok_delivery_receipts"


@pytest.fixture
def outbox(postgres_cluster) -> Iterator[PgOutbox]:
    created = make_pg_outbox(postgres_cluster, 200)
    yield created
    created.drop()


@pytest.fixture
def project(tmp_path: Path, outbox: PgOutbox, emulator: EmulatorThread) -> Project:
    """A working directory with the repository's profiles.yml, target `postgres`: 200 events."""
    return pg_project(tmp_path, outbox, emulator.url)


def test_push_delivers_every_event_once_and_a_second_push_sends_nothing(
    project: Project, emulator: EmulatorThread
) -> None:
    result = project.sender("push", "--json", "--batch-size", "64")
    assert result.returncode == 0, result.stderr
    summary = result.json()
    assert (summary["outcome"], summary["pending"], summary["delivered"], summary["requests"]) == (
        "success", 200, 200, 4)  # 150 web + 50 app in batches of 64
    accepted = emulator.events()
    assert len(accepted) == 200 and all(e["receive_count"] == 1 for e in accepted)
    outbox_ids = {r[0] for r in project.outbox.execute(f"select event_id from {OUTBOX}")}
    assert {e["payload"]["event_id"] for e in accepted} == outbox_ids

    receipts = project.outbox.receipts()
    assert len(receipts) == 200 and {r["status"] for r in receipts} == {"delivered"}
    by_id = {r["event_id"]: r for r in receipts}
    for event in accepted:  # the receipt's hash is the hash of exactly what the API received
        receipt = by_id[event["payload"]["event_id"]]
        assert receipt["payload_sha256"] == hashlib.sha256(orjson.dumps(event["payload"])).hexdigest()
        assert (receipt["attempt"], receipt["api_code"], receipt["http_status"]) == (1, 0, 200)
        assert receipt["event_source_id"] == event["event_source_id"] and receipt["request_id"].startswith("emu")
    columns = project.outbox.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'tiktok' and table_name = 'tiktok_delivery_receipts' order by ordinal_position")
    assert [c for c, _ in columns] == [c.name for c in RECEIPT_COLUMNS]
    assert dict(columns)["sent_at"] == "timestamp without time zone" and dict(columns)["attempt"] == "integer"
    (run,) = project.outbox.runs()
    assert (run["outcome"], run["delivered"], run["requests"], run["dry_run"]) == ("success", 200, 4, False)

    again = project.sender("push", "--json")
    assert again.returncode == 0, again.stderr
    assert (again.json()["pending"], again.json()["requests"]) == (0, 0)
    assert emulator.stats()["track_requests"] == 4 and len(project.outbox.receipts()) == 200

    status = project.sender("status", "--json")
    assert status.returncode == 0, status.stderr
    figures = status.json()
    assert (figures["outbox"], figures["delivered"], figures["pending"]) == (200, 200, 0)
    assert figures["last_run"]["outcome"] == "success" and "missing" in figures["audit"]
    text = project.sender("status")
    assert text.returncode == 0 and "delivered" in text.stdout and "audit: audit table(s) not found" in text.stdout


def test_retries_and_rejections_leave_the_same_receipts_as_on_duckdb(
    postgres_cluster, tmp_path: Path, emulator: EmulatorThread
) -> None:
    """One outbox, copied into both warehouses; the same faults, one request at a time in
    `--limit` order: the receipts, the summaries and the run rows are identical."""
    (tmp_path / "duckdb").mkdir()
    duck = make_outbox(tmp_path / "duckdb" / "warehouse.duckdb", 300)
    (tmp_path / "duckdb" / "profiles.yml").write_text(PROFILES_YML)
    duck_project = Project(tmp_path / "duckdb", duck,
                           {**base_env(tmp_path / "duckdb", duck.path), "TIKTOK_API_URL": emulator.url})
    pg = make_pg_outbox(postgres_cluster, 0)
    try:
        pg.copy_from(duck)
        (tmp_path / "pg").mkdir()
        pg_proj = pg_project(tmp_path / "pg", pg, emulator.url)
        faults = "http5xx=1*2,reject=evt-00000017,reject_noindex=evt-00000122|evt-00000203"
        flags = ("push", "--json", "--batch-size", "25", "--concurrency", "1", "--limit", "300")
        outcomes = []
        for proj in (duck_project, pg_proj):
            emulator.reset()
            emulator.set_faults(faults, seed=1)
            first = proj.sender(*flags)
            assert first.returncode == 1, first.stderr  # three rejections
            emulator.set_faults("")
            second = proj.sender(*flags, "--retry-rejected")
            assert second.returncode == 0, second.stderr
            keep = ("outcome", "exit_code", "pending", "sent", "delivered", "rejected", "failed", "expired",
                    "requests", "problems")
            summaries = [{k: r.json()[k] for k in keep} for r in (first, second)]
            receipts = Counter(
                tuple(r[c] for c in ("event_source_id", "event", "event_id", "event_time", "status", "attempt",
                                     "http_status", "api_code", "api_message", "payload_sha256",
                                     "experiment_cell", "event_source", "test_event_code"))
                for r in proj.outbox.receipts())
            runs = [{k: r[k] for k in ("outcome", "pending", "sent", "delivered", "rejected", "failed", "expired",
                                       "requests", "dry_run", "shard", "message")} for r in proj.outbox.runs()]
            outcomes.append((summaries, receipts, runs))
        on_duckdb, on_pg = outcomes
        assert on_pg[0] == on_duckdb[0]
        assert on_pg[1] == on_duckdb[1]
        assert on_pg[2] == on_duckdb[2]
        statuses = Counter(key[4] for key in on_pg[1].elements())
        assert statuses["rejected"] == 3 and statuses["failed"] > 2 and statuses["delivered"] == 300
    finally:
        pg.drop()


@pytest.mark.parametrize("name", ["chaos", "lost_ack", "token_revoked_40105", "source_refused_40002",
                                  "poison_unknown_code", "code0_under_403"])
def test_fault_scenarios_lose_nothing_on_postgres(postgres_cluster, tmp_path: Path, name: str) -> None:
    """fault_matrix's scenarios, reconciled event by event, with the outbox on PostgreSQL."""
    scenario = next(s for s in SCENARIOS if s.name == name)
    created: list[PgOutbox] = []

    def postgres_project(workdir: Path, events: int) -> Project:
        created.append(make_pg_outbox(postgres_cluster, events))
        return pg_project(workdir, created[-1], "")

    try:
        row = run_scenario(scenario, tmp_path, postgres_project)
    finally:
        for outbox in created:
            outbox.drop()
    assert row.problems == [], table([row]) + "\n" + "\n".join(row.problems)
    assert row.lost == 0 and row.misdelivered == 0 and row.failed == scenario.failed
    assert row.delivered + row.rejected + row.failed == row.events


def test_limit_dry_run_and_test_events(project: Project, emulator: EmulatorThread, tmp_path: Path) -> None:
    dump = tmp_path / "bodies.jsonl"
    dry = project.sender("push", "--dry-run", "--json", "--dump", str(dump), env={"TIKTOK_ACCESS_TOKEN": None})
    assert dry.returncode == 0, dry.stderr
    assert (dry.json()["sent"], dry.json()["requests"]) == (200, 2)
    assert sum(len(orjson.loads(line)["data"]) for line in dump.read_bytes().splitlines()) == 200
    assert emulator.stats()["requests"] == 0 and project.outbox.receipts() == []
    assert [r["dry_run"] for r in project.outbox.runs()] == [True]

    trial = project.sender("push", "--json", "--limit", "20", "--test-event-code", "TEST123")
    assert (trial.returncode, trial.json()["delivered"]) == (0, 20)
    status = project.sender("status", "--json").json()
    assert (status["pending"], status["delivered"], status["test_events"]) == (200, 0, 20)

    emulator.reset()
    limited = project.sender("push", "--json", "--limit", "50")
    assert limited.returncode == 0 and limited.json()["pending"] == limited.json()["delivered"] == 50
    oldest = {r[0] for r in project.outbox.execute(
        f"select event_id from {OUTBOX} order by event_time, event_id limit 50")}
    assert set(accepted_ids(emulator)) == oldest
    rest = project.sender("push", "--json")
    assert (rest.json()["pending"], rest.json()["delivered"]) == (150, 150)
    assert len(accepted_ids(emulator)) == 200 and set(accepted_ids(emulator).values()) == {1}


def test_three_concurrent_shards_run_side_by_side_and_partition_the_outbox(
    project: Project, emulator: EmulatorThread
) -> None:
    project.outbox.add(400, start=200)  # 600 events
    # each shard run lasts about 6 s (4 rounds of requests), long enough for the two refused
    # runs to start while the shards hold their leases on a loaded machine
    emulator.set_faults("latency_ms=1500")
    shard_push = ("push", "--json", "--batch-size", "25", "--concurrency", "2")
    procs = [start(project, *shard_push, "--shard", f"{k}/3") for k in (1, 2, 3)]
    wait_for(lambda: emulator.stats()["track_requests"] >= 3)
    refused = [start(project, "push"),  # would overlap every shard
               start(project, "push", "--shard", "1/2")]  # overlaps shards of /3
    unsharded, other_count = (finish(p) for p in refused)
    results = [finish(p) for p in procs]
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert unsharded.returncode == EXIT_BUSY and "shard" in one_line_error(unsharded.stderr)
    assert other_count.returncode == EXIT_BUSY and "another shard count" in one_line_error(other_count.stderr)

    runs = project.outbox.runs()
    assert sorted(r["shard"] for r in runs) == ["1/3", "2/3", "3/3"]
    assert max(r["started_at"] for r in runs) < min(r["finished_at"] for r in runs)  # side by side
    outbox_ids = {r[0] for r in project.outbox.execute(f"select event_id from {OUTBOX}")}
    counts = accepted_ids(emulator)
    assert set(counts) == outbox_ids and set(counts.values()) == {1}  # union complete, no repeat
    per_shard: dict[str, set[str]] = {}
    shard_of_run = {r["run_id"]: r["shard"] for r in runs}
    for receipt in project.outbox.receipts("status = 'delivered'"):
        per_shard.setdefault(shard_of_run[receipt["run_id"]], set()).add(receipt["event_id"])
    for name, ids in per_shard.items():  # each run sent exactly the documented hash's share
        assert ids == {e for e in outbox_ids if shard_of(e, 3) == int(name[0])}
    assert sum(len(ids) for ids in per_shard.values()) == 600  # so the shares do not overlap


def test_a_second_run_exits_5_while_the_first_holds_the_lease_and_waits_with_lock_timeout(
    project: Project, emulator: EmulatorThread
) -> None:
    project.outbox.add(100, start=200)
    # 15 requests, 4 at a time: about 6 s, long enough for three more sender start-ups on a
    # loaded machine (the first must still hold the lease when the waiting run starts)
    emulator.set_faults("latency_ms=1500")
    first = start(project, *PUSH)
    wait_for(lambda: emulator.stats()["track_requests"] >= 1)
    second = project.sender(*PUSH)
    waiting = start(project, *PUSH, "--lock-timeout", "60")
    assert second.returncode == EXIT_BUSY and second.stdout == ""
    line = one_line_error(second.stderr)
    assert "the delivery lease of schema tiktok in database" in line and f"PID {first.pid}" in line
    assert "--lock-timeout" in line
    status = project.sender("status", "--json")  # reading needs no lease on PostgreSQL
    assert status.returncode == 0 and status.json()["outbox"] == 300
    assert finish(first).returncode == 0
    after = finish(waiting)
    assert after.returncode == 0, after.stderr
    assert (after.json()["pending"], after.json()["delivered"]) == (0, 0)
    assert "in use by another process" in after.stderr and "waiting up to 60 s" in after.stderr
    counts = accepted_ids(emulator)
    assert len(counts) == 300 and set(counts.values()) == {1}
    assert [r["outcome"] for r in project.outbox.runs()] == ["success", "success"]


def test_sigkill_mid_run_loses_nothing_and_releases_the_lease(
    project: Project, emulator: EmulatorThread, postgres_cluster
) -> None:
    project.outbox.add(800, start=200)
    emulator.set_faults("latency_ms=150")
    proc = start(project, *PUSH)
    wait_for(lambda: emulator.stats()["track_requests"] >= 3 * CONCURRENCY)
    proc.kill()  # SIGKILL: no handler runs, nothing is flushed
    killed = finish(proc)
    assert killed.returncode == -signal.SIGKILL
    held = ("select count(*) from pg_locks where locktype = 'advisory' and classid::bigint = %s"
            " and database = (select oid from pg_database where datname = %s)")
    key = lease_key("tiktok")
    wait_for(lambda: project.outbox.execute(held, [key, project.outbox.dbname]) == [(0,)], timeout=10)
    time.sleep(0.3)  # requests the emulator was still serving land now

    (run,) = project.outbox.runs()
    assert run["outcome"] == "running" and run["finished_at"] is None
    ((rows, ids),) = project.outbox.execute(f"select count(*), count(distinct receipt_id) from {RECEIPTS}")
    assert rows == ids > 0
    delivered_before = {r["event_id"] for r in project.outbox.receipts("status = 'delivered'")}
    accepted_before = accepted_ids(emulator)
    assert delivered_before <= set(accepted_before)  # no receipt claims a delivery that did not happen
    in_flight = set(accepted_before) - delivered_before
    assert len(in_flight) <= 2 * CONCURRENCY * BATCH and 0 < len(delivered_before) < 1000

    emulator.set_faults("")
    rerun = project.sender(*PUSH)  # no --lock-timeout: the killed session's lease is gone
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.json()["pending"] == 1000 - len(delivered_before)
    row = Row("sigkill", events=1000, runs=2)
    reconcile(project, emulator, row, [rerun], killed_runs=1)
    crashed = next(r for r in project.outbox.runs() if r["run_id"] == run["run_id"])
    assert crashed["outcome"] == "crashed"
    assert row.problems == [] and row.lost == 0 and row.delivered == 1000
    repeated = {event_id for event_id, count in accepted_ids(emulator).items() if count > 1}
    assert repeated == in_flight  # only what was in flight was sent again, with the same id


def test_the_token_and_the_password_never_leak(
    project: Project, emulator: EmulatorThread, tmp_path: Path
) -> None:
    secured = with_password(project)
    emulator.set_faults("verbose_errors=510,throttle=0.2,sys_error=0.2,reject=evt-00000004,retry_after=0.01",
                        seed=2)
    dump = tmp_path / "bodies.jsonl"
    outputs = [
        secured.sender("-v", "push", "--json", "--batch-size", "20", "--max-attempts", "10",
                       "--dump", str(dump)),
        secured.sender("-v", "push", "--dry-run", "--retry-rejected", env={"TIKTOK_ACCESS_TOKEN": None}),
        secured.sender("-v", "status"),
        secured.sender("status", "--json"),
        secured.sender("report", "--out", str(tmp_path / "report.html")),
        secured.sender("-v", "push", env={"TIKTOK_PG_PASSWORD": PG_PASSWORD + "-wrong"}),
        secured.sender("-v", "status", env={"TIKTOK_PG_PORT": "1"}),
    ]
    emulator.set_faults("verbose_errors=510,revoke_after=0")
    secured.outbox.add(20, start=200)
    outputs.append(secured.sender("-v", "push", "--json"))
    assert [o.returncode for o in outputs] == [1, 0, 0, 0, 4, 4, 4, 3], [o.stderr[-300:] for o in outputs]
    assert "audit table(s) not found" in outputs[4].stderr
    assert "password authentication failed" in outputs[5].stderr
    assert "Connection refused" in outputs[6].stderr
    assert any(r["run_id"] for r in secured.outbox.runs())  # the role wrote the tables
    for secret in (TOKEN, PG_PASSWORD):
        piece = secret[:8]
        for out in outputs:
            assert piece not in out.stdout and piece not in out.stderr
            assert "Traceback" not in out.stderr
        assert piece.encode() not in dump.read_bytes()
        assert piece not in secured.outbox.all_text()
    assert any("Access-Token=***" in (r["api_message"] or "") for r in secured.outbox.receipts())


def test_the_lease_outlives_a_long_retry_after_on_a_server_that_ends_idle_sessions(
    postgres_cluster, project: Project, emulator: EmulatorThread
) -> None:
    """Every worker waits out a 3 s Retry-After while the server ends sessions idle for 1 s: the
    sender's own sessions turn that timeout off, so the run keeps its lease and its receipts."""
    postgres_cluster.query(
        f'alter database "{project.outbox.dbname}" set idle_session_timeout = \'1s\'', dbname="postgres")
    emulator.set_faults("http429=1*1,retry_after=3")
    started = time.monotonic()
    result = project.sender(*PUSH)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 3  # the pause happened
    assert result.json()["delivered"] == 200 and len(emulator.events()) == 200


def test_a_run_that_loses_its_lease_stops_sending_at_once(
    postgres_cluster, project: Project, emulator: EmulatorThread
) -> None:
    """The session holding the lease is terminated during a long Retry-After: within the lease
    check's period the run stops, sends nothing more, and says why (exit 4)."""
    emulator.set_faults("http429=1*1,retry_after=20")
    proc = start(project, *PUSH)
    dbname = project.outbox.dbname

    def holder() -> list[tuple]:
        return postgres_cluster.query(
            "select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 2"
            " and database = (select oid from pg_database where datname = %s)", [dbname],
            dbname="postgres")

    wait_for(lambda: bool(holder()) and emulator.stats()["track_requests"] >= 1)
    time.sleep(0.5)  # the 429 arrived: every worker is paused for 20 s
    requests = emulator.stats()["track_requests"]
    for (pid,) in holder():
        postgres_cluster.query("select pg_terminate_backend(%s)", [pid], dbname="postgres")
    result = finish(proc, timeout=30)
    assert result.returncode == 4, result.stderr
    assert "lease" in result.stderr and "Traceback" not in result.stderr
    assert emulator.stats()["track_requests"] == requests  # nothing sent after the lease was lost
