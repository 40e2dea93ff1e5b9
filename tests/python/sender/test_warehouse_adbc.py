"""The shared ADBC mechanics (tiktok_sender.warehouse.adbc): pending batches cut to the chunk size
and cast to the outbox schema, appends handed to the driver in bounded slices as one statement,
the pending query's own values as literals, and driver errors as one line without secrets. The
reader is fed real Arrow streams; everything else runs on the real PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator

import adbc_driver_postgresql.dbapi
import pyarrow as pa
import pytest
from pg_harness import PgOutbox, make_pg_outbox

from tiktok_sender.errors import WarehouseError
from tiktok_sender.relations import Relation
from tiktok_sender.settings import Secret
from tiktok_sender.warehouse.adbc import (
    DRIVER_ERRORS,
    PendingBatches,
    error_text,
    ingest,
    inline_literals,
    slices,
)

pytest_plugins = ["pg_fixtures"]

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def stream(*sizes: int, fail_after: int | None = None) -> pa.RecordBatchReader:
    """A driver-like stream of batches of `sizes` rows (int32 ids and large strings, so they need
    a cast), raising ArrowInvalid after `fail_after` batches."""
    driver = pa.schema([("ID", pa.int32()), ("NAME", pa.large_string())])

    def batches() -> Iterator[pa.RecordBatch]:
        start = 0
        for number, size in enumerate(sizes):
            if number == fail_after:
                raise pa.ArrowInvalid("connection lost, password=hunter2")
            ids = list(range(start, start + size))
            yield pa.record_batch([pa.array(ids, pa.int32()), pa.array([f"n{i}" for i in ids],
                                                                       pa.large_string())], schema=driver)
            start += size

    return pa.RecordBatchReader.from_batches(driver, batches())


def read(reader: PendingBatches) -> list[pa.RecordBatch]:
    out = []
    while (batch := reader.next()) is not None:
        out.append(batch)
    return out


def test_pending_batches_are_cut_to_the_chunk_size_and_cast_to_the_schema() -> None:
    closed: list[bool] = []
    reader = PendingBatches(stream(5, 0, 1, 7, 3), SCHEMA, 4, str, lambda: closed.append(True))
    batches = read(reader)
    assert [b.num_rows for b in batches] == [4, 4, 4, 4]
    assert all(b.schema == SCHEMA for b in batches)
    assert pa.Table.from_batches(batches).column("id").to_pylist() == list(range(16))
    assert reader.next() is None and not closed
    reader.close()
    assert closed == [True]


def test_a_chunk_larger_than_the_stream_is_the_whole_stream() -> None:
    reader = PendingBatches(stream(3, 2), SCHEMA, 1000, str, lambda: None)
    assert [b.num_rows for b in read(reader)] == [5]


def test_a_broken_stream_is_a_warehouse_error_and_close_still_runs() -> None:
    closed: list[bool] = []
    reader = PendingBatches(stream(3, 3, 3, fail_after=2), SCHEMA, 2, lambda e: "the stream broke",
                            lambda: closed.append(True))
    assert [reader.next().num_rows for _ in range(3)] == [2, 2, 2]  # type: ignore[union-attr]
    with pytest.raises(WarehouseError, match="^reading the outbox failed: the stream broke$"):
        reader.next()
    reader.close()
    assert closed == [True]


def test_slices_are_bounded_and_share_the_tables_buffers() -> None:
    table = pa.table({"id": pa.array(range(10), pa.int64())})
    reader = slices(table, 3)
    sizes = [batch.num_rows for batch in reader]
    assert sizes == [3, 3, 3, 1]
    assert slices(table, 3).read_all().equals(table)
    with pytest.raises(ValueError):
        slices(table, 0)


def test_inline_literals_quote_strings_and_refuse_what_is_not_a_plain_value() -> None:
    sql = inline_literals("select %s, %s, %s", [7, "o'brien", ""], "%s")
    assert sql == "select 7, 'o''brien', ''"
    for bad in ([True], [1.5], [None], ["nul\x00"]):
        with pytest.raises(TypeError):
            inline_literals("select %s", bad, "%s")
    with pytest.raises(ValueError, match="2 parameter mark"):
        inline_literals("select %s, %s", [1], "%s")


@pytest.fixture
def outbox(postgres_cluster) -> Iterator[PgOutbox]:
    created = make_pg_outbox(postgres_cluster, 0)
    yield created
    created.drop()


@pytest.fixture
def connection(postgres_cluster, outbox: PgOutbox) -> Iterator[adbc_driver_postgresql.dbapi.Connection]:
    uri = (f"postgresql://{postgres_cluster.user}@{postgres_cluster.host}:{postgres_cluster.port}"
           f"/{outbox.dbname}")
    with adbc_driver_postgresql.dbapi.connect(uri, autocommit=True) as con:
        yield con


def test_inlined_literals_read_back_as_the_values_on_postgres(connection) -> None:
    values = ["o'brien", "back\\slash", "x'); drop table t; --", "ünï ☃", 'quote"d', ""]
    with connection.cursor() as cur:
        cur.execute("set standard_conforming_strings = on")
        cur.execute(inline_literals(", ".join(["select %s"] + ["%s"] * (len(values))), [*values, 42], "%s"))
        assert cur.fetchall() == [(*values, 42)]


def test_ingest_appends_every_slice_in_one_statement(connection, outbox: PgOutbox) -> None:
    outbox.execute("create table tiktok.landing (note varchar, n bigint, extra integer)")
    relation = Relation("tiktok", "landing")
    table = pa.table({"n": pa.array(range(10), pa.int64()), "note": [f"r{i}" for i in range(10)]})
    ingest(connection, relation, table, 3)  # by column name: the order of the table's differs
    assert outbox.execute("select count(*), sum(n), count(extra) from tiktok.landing") == [(10, 45, 0)]
    broken = pa.table({"n": pa.array(range(7), pa.int64()), "note": ["ok"] * 6 + ["nul\x00"]})
    with pytest.raises(DRIVER_ERRORS):  # the last slice fails: the earlier ones do not land
        ingest(connection, relation, broken, 2)
    assert outbox.execute("select count(*) from tiktok.landing") == [(10,)]


def test_driver_errors_are_the_servers_line_without_secrets(postgres_cluster, connection) -> None:
    with connection.cursor() as cur, pytest.raises(DRIVER_ERRORS) as caught:
        cur.execute("select no_such_column from pg_class")
    assert error_text(caught.value, (), b"PG_DIAG_MESSAGE_PRIMARY") == (
        'column "no_such_column" does not exist')
    assert error_text(caught.value).startswith("Failed to prepare query: ERROR:")  # no details key
    secret = Secret("pw-hunter2-SECRET")
    uri = f"postgresql://nobody:{secret.reveal()}@{postgres_cluster.host}:1/x?connect_timeout=3"
    with pytest.raises(DRIVER_ERRORS) as refused:
        adbc_driver_postgresql.dbapi.connect(uri)
    text = error_text(refused.value, (secret,))
    assert text.startswith("Failed to connect: ") and "Connection refused" in text and "\n" not in text
    assert secret.reveal() not in text
    assert error_text(pa.ArrowInvalid(f"broke near {secret.reveal()}\nmore"), (secret,)) == "broke near ***"


class _CountingCursor:
    """A driver cursor that reports `appended` rows whatever it is given (what the Snowflake
    driver reports when its COPY skips a file), and records what it was asked."""

    def __init__(self, appended: int) -> None:
        self.appended = appended
        self.calls: list[tuple[str, str | None, int]] = []
        self.adbc_statement = self
        self.options: dict[str, str] = {}

    def set_options(self, **options: str) -> None:
        self.options.update(options)

    def adbc_ingest(self, name: str, reader: pa.RecordBatchReader, mode: str, db_schema_name: str | None) -> int:
        self.calls.append((name, db_schema_name, reader.read_all().num_rows))
        return self.appended

    def __enter__(self) -> _CountingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _OneCursor:
    def __init__(self, cursor: _CountingCursor) -> None:
        self._cursor = cursor

    def cursor(self) -> _CountingCursor:
        return self._cursor


@pytest.mark.parametrize("appended", [5, -1])
def test_ingest_accepts_the_rows_given_or_a_driver_that_does_not_count(appended: int) -> None:
    cursor = _CountingCursor(appended)
    ingest(_OneCursor(cursor), Relation("S", "T"), pa.table({"n": range(5)}), 2,  # type: ignore[arg-type]
           options={"k": "v"}, qualified=False)
    assert cursor.calls == [("T", None, 5)] and cursor.options == {"k": "v"}


def test_ingest_refuses_a_driver_that_appended_fewer_rows_than_given() -> None:
    cursor = _CountingCursor(3)
    with pytest.raises(WarehouseError, match="S.T: the driver appended 3 of 5 rows"):
        ingest(_OneCursor(cursor), Relation("S", "T"), pa.table({"n": range(5)}), 2)  # type: ignore[arg-type]
    assert cursor.calls == [("T", "S", 5)]
