"""`sender push` end to end on a warehouse without locks (Spark, Snowflake), one set of tests for
each: the real CLI in subprocesses, the repository's profile target for the engine, the Events
API emulator on 127.0.0.1. The same behaviour and the same receipts as on DuckDB, and the lease by
claim rows (warehouse/claims.py): a second run refused while the first holds it, and two runs
started together agreeing on one sender (what a scheduler that does not serialise runs gets).

An engine's module subclasses `LocklessPush` and gives it an `engine` fixture (an `Engine`)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson
import pytest
from fault_matrix import SCENARIOS, run_scenario, table
from sender_harness import (
    PROFILES_YML,
    Outbox,
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
from tiktok_sender.tables.receipts import RECEIPT_COLUMNS

RECEIPT_KEY = ("event_source_id", "event", "event_id", "event_time", "status", "attempt", "http_status",
               "api_code", "api_message", "payload_sha256", "experiment_cell", "event_source", "test_event_code")
TIMEOUT = 300  # seconds for one sender command


class Engine(Protocol):
    """What the tests need of an engine's harness."""

    def empty(self) -> Any:
        """An outbox of no rows yet, in a schema or database of its own (`copy_from` fills it)."""

    def outbox(self, workdir: Path, n: int) -> Any:
        """An outbox with sender_harness's `n` rows."""

    def discard(self, outbox: Any) -> None:
        """Let go of an outbox (drop its schema, close its connection)."""

    def project(self, root: Path, outbox: Any, api_url: str) -> Project:
        """A working directory with the repository's profiles.yml and the engine's target."""

    def receipt_columns(self, outbox: Any) -> list[str]:
        """The receipts table's column names, in order, in lower case."""


class LocklessPush:
    @pytest.fixture
    def outbox(self, engine: Engine, tmp_path: Path) -> Iterator[Any]:
        created = engine.outbox(tmp_path / "rows", 200)
        yield created
        engine.discard(created)

    @pytest.fixture
    def project(self, engine: Engine, tmp_path: Path, outbox: Any, emulator: EmulatorThread) -> Project:
        return engine.project(tmp_path, outbox, emulator.url)

    def test_push_delivers_every_event_once_and_a_second_push_sends_nothing(
        self, engine: Engine, project: Project, emulator: EmulatorThread
    ) -> None:
        result = project.sender("push", "--json", "--batch-size", "64", timeout=TIMEOUT)
        assert result.returncode == 0, result.stderr
        summary = result.json()
        assert (summary["outcome"], summary["pending"], summary["delivered"], summary["requests"]) == (
            "success", 200, 200, 4)
        accepted = emulator.events()
        assert len(accepted) == 200 and all(e["receive_count"] == 1 for e in accepted)
        receipts = project.outbox.receipts()
        assert len(receipts) == 200 and {r["status"] for r in receipts} == {"delivered"}
        by_id = {r["event_id"]: r for r in receipts}
        for event in accepted:
            receipt = by_id[event["payload"]["event_id"]]
            assert receipt["payload_sha256"] == hashlib.sha256(orjson.dumps(event["payload"])).hexdigest()
            assert (receipt["attempt"], receipt["api_code"], receipt["http_status"]) == (1, 0, 200)
        columns = engine.receipt_columns(project.outbox)
        assert columns[: len(RECEIPT_COLUMNS)] == [c.name for c in RECEIPT_COLUMNS]
        (run,) = project.outbox.runs()
        assert (run["outcome"], run["delivered"], run["requests"], run["dry_run"]) == ("success", 200, 4, False)

        again = project.sender("push", "--json", timeout=TIMEOUT)
        assert again.returncode == 0, again.stderr
        assert (again.json()["pending"], again.json()["requests"]) == (0, 0)
        assert emulator.stats()["track_requests"] == 4 and len(project.outbox.receipts()) == 200

        status = project.sender("status", "--json", timeout=TIMEOUT)
        assert status.returncode == 0, status.stderr
        figures = status.json()
        assert (figures["outbox"], figures["delivered"], figures["pending"]) == (200, 200, 0)
        assert figures["last_run"]["outcome"] == "success"

    def test_retries_and_rejections_leave_the_same_receipts_as_on_duckdb(
        self, engine: Engine, tmp_path: Path, emulator: EmulatorThread
    ) -> None:
        """One outbox, copied into both warehouses; the same faults, one request at a time in
        `--limit` order: the receipts, the summaries and the run rows are identical."""
        (tmp_path / "duckdb").mkdir()
        duck: Outbox = make_outbox(tmp_path / "duckdb" / "warehouse.duckdb", 300)
        (tmp_path / "duckdb" / "profiles.yml").write_text(PROFILES_YML)
        duck_project = Project(tmp_path / "duckdb", duck,
                               {**base_env(tmp_path / "duckdb", duck.path), "TIKTOK_API_URL": emulator.url})
        other = engine.empty()
        try:
            other.copy_from(duck)
            (tmp_path / "other").mkdir()
            other_project = engine.project(tmp_path / "other", other, emulator.url)
            faults = "http5xx=1*2,reject=evt-00000017,reject_noindex=evt-00000122|evt-00000203"
            flags = ("push", "--json", "--batch-size", "25", "--concurrency", "1", "--limit", "300")
            outcomes = []
            for proj in (duck_project, other_project):
                emulator.reset()
                emulator.set_faults(faults, seed=1)
                first = proj.sender(*flags, timeout=TIMEOUT)
                assert first.returncode == 1, first.stderr
                emulator.set_faults("")
                second = proj.sender(*flags, "--retry-rejected", timeout=TIMEOUT)
                assert second.returncode == 0, second.stderr
                keep = ("outcome", "exit_code", "pending", "sent", "delivered", "rejected", "failed", "expired",
                        "requests", "problems")
                summaries = [{k: r.json()[k] for k in keep} for r in (first, second)]
                receipts = Counter(tuple(r[c] for c in RECEIPT_KEY) for r in proj.outbox.receipts())
                runs = [{k: r[k] for k in ("outcome", "pending", "sent", "delivered", "rejected", "failed",
                                           "expired", "requests", "dry_run", "shard", "message")}
                        for r in proj.outbox.runs()]
                outcomes.append((summaries, receipts, runs))
            on_duckdb, on_other = outcomes
            assert on_other[0] == on_duckdb[0]
            assert on_other[1] == on_duckdb[1]
            assert on_other[2] == on_duckdb[2]
        finally:
            engine.discard(other)

    @pytest.mark.parametrize("name", ["chaos", "lost_ack"])
    def test_fault_scenarios_lose_nothing(self, engine: Engine, tmp_path: Path, name: str) -> None:
        """fault_matrix's scenarios, reconciled event by event, with the outbox on the engine."""
        scenario = next(s for s in SCENARIOS if s.name == name)
        made: list[Any] = []

        def scenario_project(workdir: Path, events: int) -> Project:
            made.append(engine.outbox(workdir / "rows", events))
            return engine.project(workdir, made[-1], "")

        try:
            row = run_scenario(scenario, tmp_path, scenario_project)
        finally:
            for outbox in made:
                engine.discard(outbox)
        assert row.problems == [], table([row]) + "\n" + "\n".join(row.problems)
        assert row.lost == 0 and row.misdelivered == 0 and row.failed == scenario.failed
        assert row.delivered + row.rejected + row.failed == row.events

    def test_a_second_run_is_refused_while_the_first_holds_the_lease(
        self, project: Project, emulator: EmulatorThread
    ) -> None:
        """The first run holds its claim while slow answers keep it busy; a second run sees the
        live claim and exits 5, sending nothing; after the first ends, a run goes ahead."""
        emulator.set_faults("latency_ms=3000")
        first = start(project, "push", "--json", "--batch-size", "20", "--concurrency", "1")
        wait_for(lambda: emulator.stats()["track_requests"] >= 1, timeout=180)
        second = project.sender("push", "--json", timeout=TIMEOUT)
        assert second.returncode == EXIT_BUSY and second.stdout == "", second.stderr
        line = one_line_error(second.stderr)
        assert "in use by another process (lease holder" in line and "--lock-timeout" in line
        emulator.set_faults("")
        done = finish(first, timeout=TIMEOUT)
        assert done.returncode == 0, done.stderr
        counts = accepted_ids(emulator)
        assert len(counts) == 200 and set(counts.values()) == {1}
        third = project.sender("push", "--json", timeout=TIMEOUT)
        assert third.returncode == 0 and third.json()["pending"] == 0, third.stderr

    def test_two_runs_started_together_agree_on_one_sender(
        self, project: Project, emulator: EmulatorThread
    ) -> None:
        """Both claim within the settle time, both see both claims, the earlier claim sends, the
        other exits 5; no event is sent twice."""
        runs = [start(project, "push", "--json") for _ in range(2)]
        results = [finish(run, timeout=TIMEOUT) for run in runs]
        assert sorted(r.returncode for r in results) == [0, EXIT_BUSY], [r.stderr for r in results]
        assert len(emulator.events()) == 200 and all(e["receive_count"] == 1 for e in emulator.events())
        assert len(project.outbox.receipts()) == 200
