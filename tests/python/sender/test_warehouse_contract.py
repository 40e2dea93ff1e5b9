"""The outbox as the sender reads it, on DuckDB and PostgreSQL alike: every column cast to its
contract type, a column of a type that cannot be cast refused up front with one line (exit 4, not
an internal error), and rows with a null key kept out of the pending query and handed out once
each, recognised by their fingerprint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pg_harness import make_pg_outbox
from sender_harness import make_outbox, one_line_error
from warehouse_testkit import ENGINES, TERMINAL, Engine, make_engine, read_all

from tiktok_emulator import EmulatorThread
from tiktok_sender.errors import EXIT_CONFIG, WarehouseError
from tiktok_sender.shard import Shard
from tiktok_sender.tables.outbox import (
    OPTIONAL_COLUMNS,
    OUTBOX_COLUMNS,
    OUTBOX_SCHEMA,
    REQUIRED_COLUMNS,
    castable,
    row_fingerprint,
)
from tiktok_sender.tables.receipts import RECEIPT_COLUMNS, RECEIPT_SCHEMA, Outcome, ReceiptFactory
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
            warehouse.count_pending(warehouse.plan_pending(TERMINAL, None))
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
        assert warehouse.count_pending(warehouse.plan_pending(TERMINAL, None)) == 30
        table = read_all(warehouse, TERMINAL, None, 8)
    finally:
        warehouse.close()
    assert table.schema == OUTBOX_SCHEMA
    got = sorted(zip(*(table.column(c).to_pylist() for c in ("event_id", "event_time", "value")), strict=True))
    assert [(i, t) for i, t, _ in got] == [(i, t) for i, t, _ in expected]
    assert all(v == pytest.approx(float(e), rel=1e-6) for (_, _, v), (_, _, e) in zip(got, expected, strict=True))


def test_an_outbox_from_before_the_optional_columns_is_read_with_nulls_in_their_place(engine: Engine) -> None:
    """An outbox built by an earlier version of the dbt project has none of OPTIONAL_COLUMNS:
    it is read all the same, those columns null, its rows keeping their fingerprints."""
    engine.outbox.add(12)
    full = open_warehouse(engine.target())
    try:
        before = read_all(full, TERMINAL, None, 5)
    finally:
        full.close()
    assert before.column("limited_data_use").to_pylist().count(True) == 1  # i = 7
    for column in OPTIONAL_COLUMNS:
        engine.sql(f"alter table {OUTBOX} drop column {column}")
    older = open_warehouse(engine.target())
    try:
        older.check_outbox()
        after = read_all(older, TERMINAL, None, 5)
    finally:
        older.close()
    assert after.schema == OUTBOX_SCHEMA
    assert all(after.column(c).null_count == after.num_rows == 12 for c in OPTIONAL_COLUMNS)
    assert sorted(after.select(REQUIRED_COLUMNS).to_pylist(), key=lambda r: r["event_id"]) == sorted(
        before.select(REQUIRED_COLUMNS).to_pylist(), key=lambda r: r["event_id"])
    rows = before.to_pylist()
    assert row_fingerprint([rows[0][c] for c in OUTBOX_COLUMNS]) == row_fingerprint(
        [rows[0][c] for c in REQUIRED_COLUMNS])


def test_a_boolean_column_that_is_text_is_refused(engine: Engine) -> None:
    retype(engine, "limited_data_use", "varchar")
    assert "column limited_data_use is" in refused(engine)


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


# -- rows with a null key ------------------------------------------------------------------------


def null_keys(engine: Engine) -> None:
    """40 rows, 5 of them with a null key (one of them twice: an identical copy)."""
    engine.outbox.add(40)
    engine.sql(f"update {OUTBOX} set event_id = null where event_id in ('evt-00000001', 'evt-00000002')")
    engine.sql(f"update {OUTBOX} set event = null where event_id = 'evt-00000003'")
    engine.sql(f"update {OUTBOX} set event_source_id = null where event_id = 'evt-00000004'")
    engine.sql(f"update {OUTBOX} set event_source_id = null, event = null where event_id = 'evt-00000005'")
    engine.sql(f"insert into {OUTBOX} select * from {OUTBOX} where event_id = 'evt-00000005'")


def receipts_for(rows: pa.Table, factory: ReceiptFactory) -> pa.Table:
    n = rows.num_rows
    return factory.build(
        event_source=None, event_source_id=None, event_ids=rows.column("event_id"), events=rows.column("event"),
        event_times=rows.column("event_time"), cells=rows.column("experiment_cell"), payload_sha256=[None] * n,
        statuses="rejected", attempt=None, outcome=Outcome(api_message="not sent: event_id is missing"),
        row_fingerprints=rows.column("row_fingerprint"))


def test_null_key_rows_are_never_pending_and_are_handed_out_once(engine: Engine) -> None:
    null_keys(engine)
    warehouse = open_warehouse(engine.target())
    try:
        warehouse.check_outbox()
        before = warehouse.status()  # no receipts table yet
        assert (before.outbox, before.never_sent, before.null_key, before.pending) == (41, 35, 6, 35)
        warehouse.ensure_delivery_tables()
        assert warehouse.count_pending(warehouse.plan_pending(TERMINAL, None)) == 35
        pending = read_all(warehouse, TERMINAL, None, 16)
        assert pending.num_rows == 35
        assert all(pending.column(c).null_count == 0 for c in ("event_source_id", "event", "event_id"))

        rows = warehouse.unreceipted_null_key_rows()
        assert rows.schema == OUTBOX_SCHEMA.append(pa.field("row_fingerprint", pa.string()))
        assert rows.num_rows == 5  # the identical copy is one row
        for row in rows.to_pylist():
            assert row["row_fingerprint"] == row_fingerprint([row[c] for c in OUTBOX_COLUMNS])
        assert sorted(rows.column("order_id").to_pylist()) == [f"ord-{i}" for i in range(1, 6)]

        factory = ReceiptFactory("run-1", None)
        warehouse.append_receipts(receipts_for(rows.slice(0, 3), factory))
        left = warehouse.unreceipted_null_key_rows()
        assert left.column("row_fingerprint").to_pylist() == rows.column("row_fingerprint").to_pylist()[3:]
        warehouse.append_receipts(receipts_for(left, factory))
        assert warehouse.unreceipted_null_key_rows().num_rows == 0
        # the receipts settle no keyed event
        assert warehouse.count_pending(warehouse.plan_pending(TERMINAL, None)) == 35
        after = warehouse.status()
        assert (after.outbox, after.never_sent, after.null_key, after.rejected) == (41, 35, 6, 0)
        (count,) = warehouse.query(f"select count(*) from {warehouse.receipts} where row_fingerprint is not null")[1]
        assert count == (5,)
    finally:
        warehouse.close()


def test_the_null_key_rows_of_the_shards_make_up_the_whole(engine: Engine) -> None:
    null_keys(engine)
    warehouse = open_warehouse(engine.target())
    try:
        whole = warehouse.unreceipted_null_key_rows().column("row_fingerprint").to_pylist()
        parts = [warehouse.unreceipted_null_key_rows(Shard(k, 3)).column("row_fingerprint").to_pylist()
                 for k in (1, 2, 3)]
    finally:
        warehouse.close()
    assert sorted(sum(parts, [])) == sorted(whole) and len(whole) == 5


def test_fingerprints_are_the_same_on_both_engines(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    cluster = request.getfixturevalue("postgres_cluster")
    duck = Engine("duckdb", make_outbox(tmp_path / "warehouse.duckdb", 0), tmp_path / "d")
    pg = Engine("postgres", make_pg_outbox(cluster, 0), tmp_path / "p", cluster)
    try:
        for each in (duck, pg):
            each.root.mkdir()
            null_keys(each)
            # the same fixed values on both (sender_harness's now()-relative times differ)
            each.sql(f"update {OUTBOX} set event_time = 1760000000 + length(order_id), value = 12.25")
        found = []
        for each in (duck, pg):
            warehouse = open_warehouse(each.target())
            try:
                found.append(sorted(warehouse.unreceipted_null_key_rows().column("row_fingerprint").to_pylist()))
            finally:
                warehouse.close()
        assert found[0] == found[1] and len(found[0]) == 5
    finally:
        pg.outbox.drop()


def test_an_old_receipts_table_gets_the_fingerprint_column_at_the_end(engine: Engine) -> None:
    null_keys(engine)
    old = RECEIPT_COLUMNS[:-1]
    assert RECEIPT_COLUMNS[-1].name == "row_fingerprint"
    engine.sql(f"create table tiktok.tiktok_delivery_receipts ({', '.join(f'{c.name} {c.sql}' for c in old)})")
    warehouse = open_warehouse(engine.target())
    try:
        assert warehouse.unreceipted_null_key_rows().num_rows == 5  # no column yet: no receipt
        warehouse.ensure_delivery_tables()
        names = list(warehouse.column_types(warehouse.relations.receipts) or {})
        assert names == [c.name for c in RECEIPT_COLUMNS]
        warehouse.append_receipts(receipts_for(warehouse.unreceipted_null_key_rows(), ReceiptFactory("r", None)))
        assert warehouse.unreceipted_null_key_rows().num_rows == 0
    finally:
        warehouse.close()


def test_receipts_have_a_null_fingerprint_unless_one_is_given() -> None:
    factory = ReceiptFactory("run-1", None)
    common = dict(event_source="web", event_source_id="P", event_ids=["a", "b"], events=["Purchase"] * 2,
                  event_times=[1, 2], cells=[None, None], payload_sha256=[None, None], statuses="delivered",
                  attempt=1, outcome=Outcome())
    plain = factory.build(**common)
    assert plain.schema == RECEIPT_SCHEMA and plain.column("row_fingerprint").null_count == 2
    marked = factory.build(**common, row_fingerprints=["f1", "f2"])
    assert marked.column("row_fingerprint").to_pylist() == ["f1", "f2"]
