"""The runs table on DuckDB and PostgreSQL: the rows a killed run left `running` are marked
`crashed` by the next run that holds the lease, but only those no live process can own (on
PostgreSQL the other shards of a set may be alive); the `held` count column; an older runs table
gets the new columns at its end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from warehouse_testkit import ENGINES, Engine, make_engine

from tiktok_sender.shard import Shard
from tiktok_sender.tables.receipts import RUN_COLUMNS
from tiktok_sender.warehouse import open_warehouse
from tiktok_sender.warehouse.base import SqlWarehouse

pytest_plugins = ["pg_fixtures"]

STARTED = datetime(2026, 3, 1, 12, 0, 0)
# run id -> (outcome, shard)
HISTORY = {
    "old-success": ("success", None),
    "killed-unsharded": ("running", None),
    "killed-1of3": ("running", "1/3"),
    "killed-2of3": ("running", "2/3"),
    "killed-3of3": ("running", "3/3"),
    "killed-1of2": ("running", "1/2"),
    "interrupted": ("interrupted", "2/3"),
}


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request.param, request, tmp_path)


def with_history(warehouse: SqlWarehouse) -> None:
    warehouse.ensure_delivery_tables()
    for run_id, (outcome, shard) in HISTORY.items():
        warehouse.insert_run({"run_id": run_id, "started_at": STARTED, "outcome": outcome, "shard": shard,
                              "dry_run": False})


def outcomes(warehouse: SqlWarehouse) -> dict[str, tuple[str, datetime | None, str | None]]:
    _, rows = warehouse.query(f"select run_id, outcome, finished_at, message from {warehouse.runs}")
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def crashed(warehouse: SqlWarehouse) -> set[str]:
    return {run_id for run_id, (outcome, _, _) in outcomes(warehouse).items() if outcome == "crashed"}


def test_an_unsharded_run_marks_every_running_row_but_its_own(engine: Engine) -> None:
    warehouse = open_warehouse(engine.target())
    try:
        with_history(warehouse)
        warehouse.insert_run({"run_id": "me", "started_at": STARTED, "outcome": "running", "dry_run": False})
        assert warehouse.mark_crashed_runs("me", None) == 5
        rows = outcomes(warehouse)
        assert crashed(warehouse) == {r for r, (o, _) in HISTORY.items() if o == "running"}
        assert rows["me"][0] == "running" and rows["old-success"][0] == "success"
        assert rows["interrupted"][0] == "interrupted"
        outcome, finished_at, message = rows["killed-1of3"]
        assert finished_at is None
        assert message == ("the process ended without finishing this run (killed?); marked crashed by run me")
        assert warehouse.mark_crashed_runs("me-again", None) == 1  # "me" is now an old row too
    finally:
        warehouse.close()


def test_a_shard_marks_only_the_runs_that_cannot_be_alive_beside_it(engine: Engine) -> None:
    """PostgreSQL: shard 2/3 leaves the rows of 1/3 and 3/3 (they may be running beside it);
    DuckDB's file lock excludes every other run, so every row is marked."""
    warehouse = open_warehouse(engine.target(), shard=Shard(2, 3))
    try:
        with_history(warehouse)
        marked = warehouse.mark_crashed_runs("me", Shard(2, 3))
        if engine.name == "postgres":
            assert crashed(warehouse) == {"killed-unsharded", "killed-2of3", "killed-1of2"} and marked == 3
        else:
            assert marked == 5
    finally:
        warehouse.close()
    if engine.name == "postgres":  # an unsharded run excludes every shard: it marks the rest
        warehouse = open_warehouse(engine.target())
        try:
            assert warehouse.mark_crashed_runs("later", None) == 2
        finally:
            warehouse.close()


def test_without_a_runs_table_nothing_is_marked(engine: Engine) -> None:
    warehouse = open_warehouse(engine.target())
    try:
        assert warehouse.mark_crashed_runs("me", None) == 0
    finally:
        warehouse.close()


def test_the_newer_columns_and_an_older_runs_table(engine: Engine) -> None:
    newer = ["shard", "held", "outbox_seq_through"]
    assert [c.name for c in RUN_COLUMNS[-3:]] == newer
    assert "crashed" in next(c.description for c in RUN_COLUMNS if c.name == "outcome")
    old = [c for c in RUN_COLUMNS if c.name not in newer]
    engine.sql(f"create table tiktok.tiktok_delivery_runs ({', '.join(f'{c.name} {c.sql}' for c in old)})")
    engine.sql("insert into tiktok.tiktok_delivery_runs (run_id, outcome) values ('killed-long-ago', 'running')")
    warehouse = open_warehouse(engine.target())
    try:
        warehouse.ensure_delivery_tables()
        types = warehouse.column_types(warehouse.relations.runs) or {}
        assert list(types) == [c.name for c in RUN_COLUMNS]
        assert types["held"].lower() == types["outbox_seq_through"].lower() == "bigint"
        assert warehouse.mark_crashed_runs("me", Shard(1, 2)) == 1  # its shard is null: unsharded
        warehouse.insert_run({"run_id": "me", "started_at": STARTED, "outcome": "running", "dry_run": False})
        warehouse.update_run("me", {"outcome": "success", "held": 7, "outbox_seq_through": 3})
        assert warehouse.query(f"select held, outbox_seq_through from {warehouse.runs}"
                               " where run_id = 'me'")[1] == [(7, 3)]
    finally:
        warehouse.close()
