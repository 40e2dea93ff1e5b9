"""Crash safety, clean stops and concurrent runs: real `sender push` processes, a real DuckDB
file, the emulator on 127.0.0.1 with latency so requests are in flight when the signal lands."""

from __future__ import annotations

import signal
import time

import duckdb
import orjson
import pytest
from fault_matrix import Row, reconcile
from sender_harness import Project, accepted_ids, finish, start, wait_for

from tiktok_emulator import EmulatorThread
from tiktok_sender.delivery.workers import IN_FLIGHT_MESSAGE
from tiktok_sender.errors import EXIT_BUSY, EXIT_INTERRUPTED

BATCH, CONCURRENCY = 20, 4
PUSH = ("push", "--json", "--batch-size", str(BATCH), "--concurrency", str(CONCURRENCY))


def delivered_keys(project: Project) -> set[str]:
    return {r["event_id"] for r in project.outbox.receipts("status = 'delivered'")}


def test_sigkill_mid_run_loses_nothing_and_repeats_only_in_flight_requests(
    project: Project, emulator: EmulatorThread
) -> None:
    project.outbox.add(800, start=200)
    emulator.set_faults("latency_ms=150")
    proc = start(project, *PUSH)
    wait_for(lambda: emulator.stats()["track_requests"] >= 3 * CONCURRENCY)
    proc.kill()  # SIGKILL: no handler runs, nothing is flushed
    killed = finish(proc)
    assert killed.returncode == -signal.SIGKILL
    time.sleep(0.3)  # requests the emulator was still serving land now

    # The warehouse file opens, its tables are whole, and the killed run is visible as such.
    with duckdb.connect(str(project.outbox.path)) as con:
        con.execute("checkpoint")  # replays the killed process's write-ahead log
        ((rows, ids),) = con.execute(
            "select count(*), count(distinct receipt_id) from tiktok.tiktok_delivery_receipts"
        ).fetchall()
    assert rows == ids > 0
    (run,) = project.outbox.runs()
    assert run["outcome"] == "running" and run["finished_at"] is None
    delivered_before = delivered_keys(project)
    accepted_before = accepted_ids(emulator)
    assert delivered_before <= set(accepted_before)  # no receipt claims a delivery that did not happen
    in_flight = set(accepted_before) - delivered_before  # accepted, receipt not committed yet
    assert len(in_flight) <= 2 * CONCURRENCY * BATCH
    assert 0 < len(delivered_before) < 1000

    emulator.set_faults("")
    rerun = project.sender(*PUSH)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.json()["pending"] == 1000 - len(delivered_before)

    row = Row("sigkill", events=1000, runs=2)
    reconcile(project, emulator, row, [rerun], killed_runs=1)
    assert row.problems == [] and row.lost == 0 and row.delivered == 1000
    crashed = next(r for r in project.outbox.runs() if r["run_id"] == run["run_id"])
    assert crashed["outcome"] == "crashed" and rerun.json()["run_id"] in crashed["message"]
    repeated = {event_id for event_id, count in accepted_ids(emulator).items() if count > 1}
    assert repeated == in_flight  # only what was in flight was sent again, with the same id
    assert all(count <= 2 for count in accepted_ids(emulator).values())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_lets_requests_in_flight_finish_and_commits_their_receipts(
    project: Project, emulator: EmulatorThread, signum: int
) -> None:
    project.outbox.add(800, start=200)
    emulator.set_faults("latency_ms=300")
    proc = start(project, *PUSH)
    wait_for(lambda: emulator.stats()["track_requests"] >= 2 * CONCURRENCY)
    proc.send_signal(signum)
    stopped = finish(proc)
    assert stopped.returncode == EXIT_INTERRUPTED, stopped.stderr
    assert "Traceback" not in stopped.stderr and "finishing the requests in flight" in stopped.stderr
    summary = stopped.json()
    assert summary["outcome"] == "interrupted" and 0 < summary["delivered"] < 1000

    # Every request that reached the API got its answer recorded: nothing is ambiguous.
    assert delivered_keys(project) == set(accepted_ids(emulator))
    assert len(delivered_keys(project)) == summary["delivered"] == summary["sent"]
    assert project.outbox.receipts("status <> 'delivered'") == []
    (run,) = project.outbox.runs()
    assert (run["outcome"], run["delivered"]) == ("interrupted", summary["delivered"])
    assert run["finished_at"] is not None

    emulator.set_faults("")
    rest = project.sender(*PUSH)
    assert rest.returncode == 0, rest.stderr
    assert rest.json()["delivered"] == 1000 - summary["delivered"]
    counts = accepted_ids(emulator)
    assert len(counts) == 1000 and set(counts.values()) == {1}  # nothing was sent twice


def test_a_second_signal_stops_at_once_and_records_requests_in_flight(
    project: Project, emulator: EmulatorThread
) -> None:
    emulator.set_faults("latency_ms=5000")
    proc = start(project, *PUSH)
    wait_for(lambda: emulator.stats()["track_requests"] >= CONCURRENCY)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stopped = finish(proc)
    assert time.monotonic() - started < 3  # did not wait for the 5 s answers
    assert stopped.returncode == EXIT_INTERRUPTED and "Traceback" not in stopped.stderr
    in_flight = project.outbox.receipts("status = 'failed'")
    assert len(in_flight) == CONCURRENCY * BATCH
    assert {r["api_message"] for r in in_flight} == {IN_FLIGHT_MESSAGE}
    assert all(r["http_status"] is None and r["sent_at"] is not None for r in in_flight)
    (run,) = project.outbox.runs()
    assert run["outcome"] == "interrupted"

    emulator.set_faults("")
    rest = project.sender(*PUSH)
    assert rest.returncode == 0 and rest.json()["pending"] == 200
    counts = accepted_ids(emulator)
    assert len(counts) == 200
    assert {e for e, n in counts.items() if n > 1} <= {r["event_id"] for r in in_flight}


def test_a_signal_while_waiting_for_the_lease_exits_at_once(
    project: Project, emulator: EmulatorThread
) -> None:
    with duckdb.connect(str(project.outbox.path)):  # another writer holds the file
        proc = start(project, "push", "--lock-timeout", "60")
        assert proc.stderr is not None
        line = proc.stderr.readline()  # it says it waits, and who holds the lease
        assert "in use by another process (PID" in line and "waiting up to 60 s" in line, line
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stopped = finish(proc)
    assert time.monotonic() - started < 3
    assert stopped.returncode == EXIT_INTERRUPTED and "Traceback" not in stopped.stderr
    assert emulator.stats()["requests"] == 0


def test_a_second_run_exits_with_code_5_while_the_first_holds_the_warehouse(
    project: Project, emulator: EmulatorThread
) -> None:
    project.outbox.add(300, start=200)
    emulator.set_faults("latency_ms=1200")  # 25 requests, 4 at a time: the first run lasts ~8 s
    first = start(project, *PUSH)
    wait_for(lambda: emulator.stats()["track_requests"] >= 1)
    second = project.sender(*PUSH)
    assert second.returncode == EXIT_BUSY
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "in use by another process" in lines[0]
    assert "--lock-timeout" in lines[0] and second.stdout == ""
    status = project.sender("status")  # the read-only view is refused the same way
    assert status.returncode == EXIT_BUSY
    assert first.poll() is None  # both ran while the first run held the warehouse
    assert finish(first).returncode == 0
    counts = accepted_ids(emulator)
    assert len(counts) == 500 and set(counts.values()) == {1}
    assert len(project.outbox.runs()) == 1


def test_concurrent_runs_with_a_lock_timeout_run_one_after_the_other(
    project: Project, emulator: EmulatorThread
) -> None:
    project.outbox.add(300, start=200)
    emulator.set_faults("latency_ms=100")
    runs = [start(project, *PUSH, "--lock-timeout", "30") for _ in range(3)]
    results = [finish(proc) for proc in runs]
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    delivered = sorted(orjson.loads(r.stdout)["delivered"] for r in results)
    assert delivered == [0, 0, 500]  # whoever got the lease first sent everything
    counts = accepted_ids(emulator)
    assert len(counts) == 500 and set(counts.values()) == {1}  # never the same event twice
    assert len(project.outbox.receipts()) == 500
    outcomes = [r["outcome"] for r in project.outbox.runs()]
    assert outcomes == ["success"] * 3
