"""The PostgreSQL warehouse in process, against a real server (the session cluster of
pg_fixtures): the pending query, the shard hash, the pending rows streamed by ADBC's binary COPY,
receipts appended by ADBC bulk ingestion, the status and the advisory-lock lease. Where DuckDB
does the same, both must agree."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from pg_harness import PgOutbox, make_pg_outbox, pg_target, rss_bytes
from sender_harness import PROFILES_YML, make_outbox
from warehouse_testkit import read_all

from tiktok_sender.errors import EXIT_BUSY, WarehouseBusyError, WarehouseError
from tiktok_sender.profiles import load_target
from tiktok_sender.shard import Shard, shard_of
from tiktok_sender.tables.outbox import OUTBOX_SCHEMA
from tiktok_sender.tables.receipts import Outcome, ReceiptFactory
from tiktok_sender.warehouse import open_warehouse
from tiktok_sender.warehouse.base import Dialect, SqlWarehouse
from tiktok_sender.warehouse.postgres import PostgresDialect

pytest_plugins = ["pg_fixtures"]

TERMINAL = ("delivered", "rejected", "expired")


@pytest.fixture
def outbox(postgres_cluster) -> Iterator[PgOutbox]:
    created = make_pg_outbox(postgres_cluster, 0)
    yield created
    created.drop()


def test_the_shard_hash_is_one_function_in_postgres_duckdb_and_python(outbox: PgOutbox) -> None:
    import duckdb

    ids = ["abc", "", None, "ünïcødé-☃-订单", "x'); drop table t; --", 'quote"d', "tab\there"]
    ids += [hashlib.md5(str(i).encode()).hexdigest()[: i % 20 + 1] for i in range(1500)]
    ids = list(dict.fromkeys(ids))
    postgres, duck = PostgresDialect(), Dialect()
    with duckdb.connect() as con:
        for count in (1, 2, 3, 7, 1000, 4096):
            on_pg = dict(outbox.execute(
                f"select id, {postgres.shard_of('id', '%s')} from unnest(%s::text[]) as t(id)", [count, ids]))
            on_duckdb = dict(con.execute(
                f"select id, {duck.shard_of('id', '?')} from (select unnest(?::varchar[]) as id)",
                [count, ids]).fetchall())
            in_python = {i: shard_of(i, count) - 1 for i in ids}
            assert on_pg == on_duckdb == in_python, count


def test_pending_rows_receipts_runs_and_status_are_the_same_as_on_duckdb(
    postgres_cluster, outbox: PgOutbox, tmp_path: Path
) -> None:
    outbox.add(600)
    outbox.execute("update tiktok.tiktok_events_outbox set value = null where event_id = 'evt-00000007'")
    outbox.execute("update tiktok.tiktok_events_outbox set event_id = %s where event_id = 'evt-00000009'",
                   ["x'); drop table tiktok.tiktok_delivery_receipts; --"])
    with outbox.connect() as con, con.cursor() as cur:  # the same rows, copied into DuckDB
        cur.execute("select * from tiktok.tiktok_events_outbox")
        names = [d[0] for d in cur.description]
        rows = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in cur.fetchall()])
    duck = make_outbox(tmp_path / "warehouse.duckdb", 0)
    with duck.connect() as con:
        con.register("copied", rows)
        con.execute("insert into tiktok.tiktok_events_outbox by name select * from copied")
    (tmp_path / "duckdb").mkdir()
    (tmp_path / "duckdb" / "profiles.yml").write_text(PROFILES_YML)
    duck_target = load_target(profiles_dir_flag=tmp_path / "duckdb", environ={"DBT_DUCKDB_PATH": str(duck.path)},
                              cwd=tmp_path)
    pg_wh = open_warehouse(pg_target(tmp_path, postgres_cluster, outbox.dbname))
    duck_wh = open_warehouse(duck_target)
    try:
        keys = outbox.execute("select event_source_id, event, event_id from tiktok.tiktok_events_outbox"
                              " order by event_id")
        sent = datetime(2026, 3, 1, 12, 0, 0, 123456)
        tricky = 'line 1\nline 2 "quoted", comma; back\\slash ünï ☃ \\N NULL'
        live, test = ReceiptFactory("run-1", None), ReceiptFactory("run-2", "TEST42")

        def receipts(factory: ReceiptFactory, chosen: list[tuple], status: str, outcome: Outcome) -> pa.Table:
            n = len(chosen)
            table = factory.build(event_source="web", event_source_id="", event_ids=[k[2] for k in chosen],
                                  events=[k[1] for k in chosen], event_times=[1] * n, cells=["treatment"] * n,
                                  payload_sha256=["ab" * 32] * n, statuses=status, attempt=1, outcome=outcome)
            column = table.schema.get_field_index("event_source_id")
            return table.set_column(column, "event_source_id", pa.array([k[0] for k in chosen], pa.string()))

        tables = [
            receipts(live, keys[:100], "delivered", Outcome(sent, sent, 200, 0, "OK", "req-1")),
            receipts(live, keys[100:150], "failed", Outcome(sent, None, None, None, tricky, None)),
            receipts(live, keys[150:160], "rejected", Outcome(None, None, None, None, "", None)),
            receipts(test, keys[160:170], "delivered", Outcome(sent, sent, 200, 0, "OK", "req-2")),
        ]
        for warehouse in (pg_wh, duck_wh):
            warehouse.check_outbox()
            warehouse.ensure_delivery_tables()
            warehouse.ensure_delivery_tables()  # a second time finds them
            for table in tables:
                warehouse.append_receipts(table)
            warehouse.insert_run({"run_id": "run-1", "started_at": sent, "outcome": "running", "dry_run": False,
                                  "settings": '{"batch_size": 1000}', "shard": "2/3"})
            warehouse.update_run("run-1", {"finished_at": sent, "outcome": "success", "delivered": 100})

        def everything(warehouse: SqlWarehouse) -> tuple[list[str], list[tuple]]:
            return warehouse.query(f"select * from {warehouse.receipts} order by receipt_id")

        assert everything(pg_wh) == everything(duck_wh)
        assert len(everything(pg_wh)[1]) == 170
        assert pg_wh.query(f"select count(*) from {pg_wh.receipts} where api_message = ''")[1] == [(10,)]
        assert pg_wh.query(f"select api_message from {pg_wh.receipts} where status = 'failed' limit 1")[1] == [
            (tricky,)]

        for terminal, limit, shard in [(TERMINAL, None, None), (("delivered", "expired"), None, None),
                                       (TERMINAL, 50, None), (TERMINAL, None, Shard(2, 3)),
                                       (TERMINAL, 40, Shard(1, 3)), ((), None, None)]:
            expected = pg_wh.count_pending(pg_wh.plan_pending(terminal, limit, shard))
            on_duck = duck_wh.count_pending(duck_wh.plan_pending(terminal, limit, shard))
            assert expected == on_duck, (terminal, limit, shard)
            on_pg = read_all(pg_wh, terminal, limit, 64, shard)
            on_duckdb = read_all(duck_wh, terminal, limit, 64, shard)
            assert on_pg.num_rows == expected
            if limit is None:  # no order is promised without --limit
                on_pg, on_duckdb = (t.sort_by("event_id") for t in (on_pg, on_duckdb))
            assert on_pg.equals(on_duckdb), (terminal, limit, shard)
            if shard is not None:
                assert {shard_of(i, shard.count) for i in on_pg.column("event_id").to_pylist()} == {shard.index}
        assert pg_wh.count_pending(pg_wh.plan_pending(TERMINAL, None)) == 600 - 110
        assert pg_wh.count_pending(pg_wh.plan_pending(("delivered", "expired"), None)) == 600 - 100

        status = pg_wh.status()
        assert status == duck_wh.status()
        assert (status.outbox, status.delivered, status.rejected, status.failed, status.never_sent,
                status.test_events) == (600, 100, 10, 50, 440, 10)
        assert status.last_run is not None and status.last_run["outcome"] == "success"
        assert status.last_run["finished_at"] == sent and status.last_run["dry_run"] is False
    finally:
        pg_wh.close()
        duck_wh.close()


def test_a_nul_character_from_the_api_does_not_stop_the_receipts(
    postgres_cluster, outbox: PgOutbox, tmp_path: Path
) -> None:
    warehouse = open_warehouse(pg_target(tmp_path, postgres_cluster, outbox.dbname))
    try:
        warehouse.ensure_delivery_tables()
        warehouse.append_receipts(ReceiptFactory("run-1", None).build(
            event_source="web", event_source_id="CPIXEL", event_ids=["e1"], events=["Purchase"],
            event_times=[1], cells=[None], payload_sha256=[None], statuses="failed", attempt=1,
            outcome=Outcome(api_message="bad\x00byte", request_id="r\x00")))
        assert warehouse.query(f"select api_message, request_id from {warehouse.receipts}")[1] == [
            ("badbyte", "r")]
    finally:
        warehouse.close()


def test_pending_rows_stream_through_one_binary_copy(
    postgres_cluster, outbox: PgOutbox, tmp_path: Path
) -> None:
    """200,000 pending rows are read 2,048 at a time: memory stays flat. Held at once (as the
    driver does for a query with bound parameters), the rows would take a few hundred MB."""
    outbox.add(200_000)
    warehouse = open_warehouse(pg_target(tmp_path, postgres_cluster, outbox.dbname))
    try:
        warehouse.ensure_delivery_tables()
        assert warehouse.count_pending(warehouse.plan_pending(TERMINAL, None)) == 200_000
        reader = warehouse.open_pending(warehouse.plan_pending(TERMINAL, None), 2048)
        try:
            first = reader.next()
            assert first is not None and first.num_rows == 2048 and first.schema == OUTBOX_SCHEMA
            # the reading session is streaming the pending query as one COPY (the statement still
            # active: the server waits while the sender does not read)
            copying = postgres_cluster.query(
                "select query from pg_stat_activity where datname = %s and state = 'active'"
                " and application_name like 'tiktok-outbox sender%%' and query like 'COPY%%'",
                [outbox.dbname])
            assert [q for (q,) in copying if q.startswith("COPY (select cast(o.event_source as")], copying
            baseline, peak, rows = rss_bytes(), 0, first.num_rows
            while (batch := reader.next()) is not None:
                rows += batch.num_rows
                peak = max(peak, rss_bytes())
        finally:
            reader.close()
        assert rows == 200_000
        assert peak - baseline < 40 * 2**20, f"RSS grew by {(peak - baseline) / 2**20:.0f} MB"
    finally:
        warehouse.close()


def test_a_read_held_back_by_the_api_outlives_the_idle_transaction_timeout(
    postgres_cluster, outbox: PgOutbox, tmp_path: Path
) -> None:
    """The reading transaction idles while the sending lags behind; a server that ends idle
    transactions must not end the read."""
    outbox.add(300)
    postgres_cluster.query(f'alter database "{outbox.dbname}" set idle_in_transaction_session_timeout = 300',
                           dbname="postgres")
    warehouse = open_warehouse(pg_target(tmp_path, postgres_cluster, outbox.dbname))
    try:
        reader = warehouse.open_pending(warehouse.plan_pending(TERMINAL, None), 256)
        try:
            assert reader.next() is not None
            time.sleep(0.8)
            rest = reader.next()
            assert rest is not None and rest.num_rows == 44 and reader.next() is None
        finally:
            reader.close()
    finally:
        warehouse.close()


def busy(target, **kwargs) -> str:
    with pytest.raises(WarehouseBusyError) as caught:
        open_warehouse(target, **kwargs).close()
    assert caught.value.exit_code == EXIT_BUSY
    return str(caught.value)


def test_the_lease_is_an_advisory_lock_per_schema_and_shard(
    postgres_cluster, outbox: PgOutbox, tmp_path: Path
) -> None:
    target = pg_target(tmp_path, postgres_cluster, outbox.dbname)
    first = open_warehouse(target)
    message = busy(target)
    assert "the delivery lease of schema tiktok in database" in message
    assert "tiktok-outbox sender, PID" in message and "PostgreSQL backend PID" in message
    assert "another `sender push` is running against this schema" in message and "--lock-timeout" in message
    assert "shard 1/3" in busy(target, shard=Shard(1, 3))
    open_warehouse(target, read_only=True).close()  # reading needs no lease
    other_schema = pg_target(tmp_path, postgres_cluster, outbox.dbname)
    other_schema = type(other_schema)(**{**other_schema.__dict__, "schema": "elsewhere"})
    open_warehouse(other_schema).close()  # another schema, another lease
    first.close()

    shards = [open_warehouse(target, shard=Shard(k, 3)) for k in (1, 2)]  # side by side
    assert "shard 1/3" in busy(target, shard=Shard(1, 3))
    assert "another shard count" in busy(target, shard=Shard(1, 2))
    assert "shard 2/3" in busy(target)  # an unsharded run would overlap every shard
    third = open_warehouse(target, shard=Shard(3, 3))
    for warehouse in [*shards, third]:
        warehouse.close()
    open_warehouse(target).close()  # closing the sessions let go of every lock


def test_the_lease_is_waited_for_and_the_wait_can_be_aborted(
    postgres_cluster, outbox: PgOutbox, tmp_path: Path
) -> None:
    target = pg_target(tmp_path, postgres_cluster, outbox.dbname)
    first = open_warehouse(target)
    threading.Timer(0.5, first.close).start()
    started = time.monotonic()
    second = open_warehouse(target, lock_timeout=30)
    assert 0.4 < time.monotonic() - started < 10
    abort = threading.Event()
    threading.Timer(0.3, abort.set).start()
    started = time.monotonic()
    busy(target, lock_timeout=30, abort=abort)
    assert time.monotonic() - started < 5
    second.close()


def test_a_missing_outbox_or_column_is_one_clear_line(postgres_cluster, outbox: PgOutbox, tmp_path: Path) -> None:
    target = pg_target(tmp_path, postgres_cluster, outbox.dbname)
    elsewhere = type(target)(**{**target.__dict__, "schema": "analytics"})
    for checked, needle in ((elsewhere, f"outbox table analytics.tiktok_events_outbox not found in database "
                                        f"{outbox.dbname} at 127.0.0.1:{postgres_cluster.port} (run `dbt build`"),
                            (target, "outbox table tiktok.tiktok_events_outbox lacks column(s): event_time")):
        if checked is target:
            outbox.execute("alter table tiktok.tiktok_events_outbox drop column event_time")
        warehouse = open_warehouse(checked)
        try:
            with pytest.raises(WarehouseError) as caught:
                warehouse.check_outbox()
            assert needle in str(caught.value)
        finally:
            warehouse.close()


def test_connection_errors_are_one_line_without_the_password(
    postgres_cluster, outbox: PgOutbox, tmp_path: Path
) -> None:
    secret = "pw-Zq9SECRET-in-profile"
    closed = pg_target(tmp_path, postgres_cluster, outbox.dbname, TIKTOK_PG_PORT="1", TIKTOK_PG_PASSWORD=secret)
    missing = pg_target(tmp_path, postgres_cluster, "no_such_database", TIKTOK_PG_PASSWORD=secret)
    for target, needle in ((closed, "Connection refused"), (missing, 'database "no_such_database" does not exist')):
        with pytest.raises(WarehouseError) as caught:
            open_warehouse(target)
        text = str(caught.value)
        assert text.startswith("cannot connect to PostgreSQL (tiktok@127.0.0.1:") and needle in text, text
        assert "\n" not in text and secret not in text and caught.value.exit_code == 4


def test_the_target_role_is_set_on_every_connection(postgres_cluster, outbox: PgOutbox, tmp_path: Path) -> None:
    outbox.add(10)
    postgres_cluster.query('drop role if exists "Sender Role"; create role "Sender Role"', dbname="postgres")
    (tmp_path / "profiles.yml").write_text(
        "tiktok_outbox:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n"
        f"      host: {postgres_cluster.host}\n      port: {postgres_cluster.port}\n"
        f"      user: {postgres_cluster.user}\n      dbname: {outbox.dbname}\n      schema: tiktok\n"
        "      role: Sender Role\n      sslmode: disable\n      connect_timeout: 5\n")
    warehouse = open_warehouse(load_target(profiles_dir_flag=tmp_path, environ={}, cwd=tmp_path))
    try:
        assert warehouse.query("select current_user")[1] == [("Sender Role",)]
        with pytest.raises(WarehouseError, match="^planning the pending read failed: permission denied for schema"):
            warehouse.count_pending(warehouse.plan_pending(TERMINAL, None))
        outbox.execute('grant usage on schema tiktok to "Sender Role";'
                       ' grant select on tiktok.tiktok_events_outbox to "Sender Role"')
        assert warehouse.count_pending(warehouse.plan_pending(TERMINAL, None)) == 10
    finally:
        warehouse.close()
