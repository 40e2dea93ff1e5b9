"""The outbox as the sender reads it, on DuckDB and PostgreSQL alike: every column cast to its
contract type, and a column of a type that cannot be cast refused up front with one line (exit 4,
not an internal error)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sender_harness import one_line_error
from warehouse_testkit import ENGINES, TERMINAL, Engine, make_engine, read_all

from tiktok_sender.emulator import EmulatorThread
from tiktok_sender.errors import EXIT_CONFIG, WarehouseError
from tiktok_sender.outbox_schema import OUTBOX_SCHEMA, castable
from tiktok_sender.warehouse import open_warehouse

pytest_plugins = ["pg_fixtures"]

OUTBOX = "tiktok.tiktok_events_outbox"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request.param, request, tmp_path)


def retype(engine: Engine, column: str, sql_type: str, using: str | None = None) -> None:
    engine.sql(f"alter table {OUTBOX} alter column {column} type {sql_type}"
               + (f" using {using}" if using else ""))


def refused(engine: Engine) -> str:
    """The one-line WarehouseError of the outbox check (and of a pending query run without it)."""
    warehouse = open_warehouse(engine.target())
    try:
        with pytest.raises(WarehouseError) as checked:
            warehouse.check_outbox()
        with pytest.raises(WarehouseError):
            warehouse.count_pending(TERMINAL, None)
    finally:
        warehouse.close()
    text = str(checked.value)
    assert "\n" not in text and checked.value.exit_code == EXIT_CONFIG
    return text


def test_a_timestamp_event_time_is_refused_with_one_line_saying_what_to_write(engine: Engine) -> None:
    engine.outbox.add(20)
    retype(engine, "event_time", "timestamp", "cast(to_timestamp(event_time) as timestamp)")
    text = refused(engine)
    assert text.startswith(f"outbox table {OUTBOX}: column event_time is TIMESTAMP") or text.startswith(
        f"outbox table {OUTBOX}: column event_time is timestamp without time zone"), text
    assert "contract type bigint" in text and "Unix seconds as an integer" in text
    assert "extract(epoch from" in text


def test_the_push_of_a_timestamp_event_time_exits_4_not_70(engine: Engine, emulator: EmulatorThread) -> None:
    engine.outbox.add(20)
    retype(engine, "event_time", "timestamp", "cast(to_timestamp(event_time) as timestamp)")
    result = engine.project(emulator.url).sender("push")
    assert result.returncode == 4, result.stderr
    assert "column event_time is" in one_line_error(result.stderr)
    assert emulator.events() == []


@pytest.mark.parametrize(("column", "sql_type", "using", "needle"), [
    ("event_time", "varchar", None, "Unix seconds as an integer"),
    ("value", "varchar", None, "contract type double precision: it must be a number"),
    ("event_id", "bigint", "cast(substr(event_id, 5) as bigint)", "contract type varchar: it must be a string"),
])
def test_columns_that_do_not_cast_safely_are_refused(
    engine: Engine, column: str, sql_type: str, using: str | None, needle: str
) -> None:
    engine.outbox.add(5)
    retype(engine, column, sql_type, using)
    text = refused(engine)
    assert f"column {column} is " in text and needle in text, text


def test_every_wrong_column_is_counted_in_the_one_line(engine: Engine) -> None:
    retype(engine, "value", "varchar")
    retype(engine, "ttclid", "integer", "cast(null as integer)")
    retype(engine, "event_time", "varchar")
    text = refused(engine)
    assert "column event_time is" in text and "(and 2 more: ttclid, value)" in text


def test_integers_of_any_width_and_any_number_are_read_as_the_contract_types(engine: Engine) -> None:
    engine.outbox.add(30)
    expected = sorted(engine.sql(f"select event_id, event_time, value from {OUTBOX}"))
    retype(engine, "event_time", "integer")  # int4
    retype(engine, "value", "real")
    retype(engine, "experiment_cell", "char(9)" if engine.name == "duckdb" else "text")
    warehouse = open_warehouse(engine.target())
    try:
        warehouse.check_outbox()
        assert warehouse.count_pending(TERMINAL, None) == 30
        table = read_all(warehouse, TERMINAL, None, 8)
    finally:
        warehouse.close()
    assert table.schema == OUTBOX_SCHEMA
    got = sorted(zip(*(table.column(c).to_pylist() for c in ("event_id", "event_time", "value")), strict=True))
    assert [(i, t) for i, t, _ in got] == [(i, t) for i, t, _ in expected]
    assert all(v == pytest.approx(float(e), rel=1e-6) for (_, _, v), (_, _, e) in zip(got, expected, strict=True))


def test_the_pushed_int4_event_time_is_sent(engine: Engine, emulator: EmulatorThread) -> None:
    engine.outbox.add(12)
    retype(engine, "event_time", "integer")
    result = engine.project(emulator.url).sender("push", "--json")
    assert result.returncode == 0, result.stderr
    assert result.json()["delivered"] == 12
    assert {type(e["payload"]["event_time"]) for e in emulator.events()} == {int}


@pytest.mark.parametrize(("data_type", "contract", "ok"), [
    ("BIGINT", "bigint", True), ("integer", "bigint", True), ("UHUGEINT", "bigint", True),
    ("smallint", "bigint", True), ("TIMESTAMP", "bigint", False),
    ("timestamp without time zone", "bigint", False), ("VARCHAR", "bigint", False),
    ("numeric(18,0)", "bigint", False), ("DOUBLE", "bigint", False),
    ("DECIMAL(18,2)", "double precision", True), ("numeric", "double precision", True),
    ("real", "double precision", True), ("INTEGER", "double precision", True),
    ("VARCHAR", "double precision", False), ("BOOLEAN", "double precision", False),
    ("character varying(20)", "varchar", True), ("text", "varchar", True), ("character(3)", "varchar", True),
    ("ENUM('a', 'b')", "varchar", True), ("BIGINT", "varchar", False), ("UUID", "varchar", False),
])
def test_castable_types(data_type: str, contract: str, ok: bool) -> None:
    assert castable(data_type, contract) is ok
