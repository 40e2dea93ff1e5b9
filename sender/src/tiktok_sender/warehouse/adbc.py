"""What every warehouse reached through ADBC (Arrow Database Connectivity) shares.

An ADBC driver hands a query's result out as an Arrow stream and takes an Arrow stream to append
to a table, so the sender's rows never become Python objects on the way. PostgreSQL goes through
adbc-driver-postgresql; the Snowflake and BigQuery drivers speak the same interface (and do their
own authentication), so what is here serves them unchanged:

- `PendingBatches`: the pending rows from `cursor.fetch_record_batch()`, cut into batches of
  `chunk_rows` (a driver sizes its batches by bytes, not rows) and cast to the reader's schema (a
  driver picks its own Arrow flavour of a SQL type);
- `ingest`: `cursor.adbc_ingest(..., mode="append")` from a RecordBatchReader over the table in
  slices of at most `slice_rows` rows. The driver streams the slices into one statement
  (PostgreSQL: one binary COPY), so an append is atomic and the driver converts one slice at a
  time;
- `error_text`: a driver error as one line without secrets, for WarehouseError;
- `inline_literals`: the pending query's own values as literals. A driver streams a query
  without parameters (PostgreSQL: `COPY (query) TO STDOUT` in binary), but holds the whole result
  of a query with bound parameters in memory before the first batch comes out.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import adbc_driver_manager
import adbc_driver_manager.dbapi
import pyarrow as pa

from tiktok_sender.errors import WarehouseError
from tiktok_sender.relations import Relation
from tiktok_sender.settings import Secret, redact
from tiktok_sender.tables.outbox import OUTBOX_SCHEMA
from tiktok_sender.warehouse.support import first_line

__all__ = ["DRIVER_ERRORS", "PendingBatches", "error_text", "ingest", "inline_literals",
           "read_pending", "slices"]

# What a driver raises: ADBC's DB-API errors, and Arrow's when a result stream breaks mid-read.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (adbc_driver_manager.Error, pa.ArrowException)
# The status code and driver tag ADBC puts before a driver's message: `IO: [libpq] `.
_ADBC_PREFIX = re.compile(r"^[A-Z_]+: (?:\[[^\]]*\] )?")


def error_text(
    exc: BaseException, secrets: Sequence[Secret | None] = (), message_key: bytes | None = None
) -> str:
    """`exc` as one line for the user, with `secrets` redacted: the server's own message where the
    driver passes it on in the error's details under `message_key` (PostgreSQL's
    `PG_DIAG_MESSAGE_PRIMARY`), else the message's first line without ADBC's status prefix."""
    details = dict(getattr(exc, "details", None) or ())
    primary = details.get(message_key) if message_key is not None else None
    if isinstance(primary, bytes) and primary.strip():
        text = first_line(Exception(primary.decode("utf-8", "replace")))
    else:
        text = _ADBC_PREFIX.sub("", first_line(exc))
    return redact(text, *secrets)


def _literal(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for a {type(value).__name__} value")


def inline_literals(sql: str, params: Sequence[Any], mark: str) -> str:
    """`sql` with each `mark` replaced, in order, by the next of `params` as a SQL literal: an int
    as its digits, a string single-quoted with its quotes doubled (the connection must read
    backslashes literally: PostgreSQL's `standard_conforming_strings`). Only for values of the
    sender's own (terminal statuses, shard numbers, a limit), never row data."""
    pieces = sql.split(mark)
    if len(pieces) != len(params) + 1:
        raise ValueError(f"{len(pieces) - 1} parameter mark(s) for {len(params)} value(s)")
    parts = [pieces[0]]
    for value, piece in zip(params, pieces[1:], strict=True):
        parts += [_literal(value), piece]
    return "".join(parts)


def slices(table: pa.Table, slice_rows: int) -> pa.RecordBatchReader:
    """`table` as a reader of batches of at most `slice_rows` rows (views of its buffers)."""
    if slice_rows < 1:
        raise ValueError("slice_rows must be at least 1")
    return pa.RecordBatchReader.from_batches(
        table.schema, table.to_batches(max_chunksize=slice_rows))


def ingest(
    connection: adbc_driver_manager.dbapi.Connection, relation: Relation, table: pa.Table,
    slice_rows: int, *, options: Mapping[str, str] | None = None, qualified: bool = True,
) -> None:
    """Append `table` to `relation` (by column name) through the driver's bulk ingestion, from a
    reader of slices of at most `slice_rows` rows; on an autocommit connection it is committed
    when this returns. `options` are the driver's statement options for it; `qualified=False`
    names the table alone, for a driver that takes no schema (Snowflake's: the session's schema
    must then be the relation's). Driver errors pass through; a driver that reports another
    number of rows appended than given raises WarehouseError (rows must never go missing
    silently)."""
    with connection.cursor() as cursor:
        if options:
            cursor.adbc_statement.set_options(**options)
        appended = cursor.adbc_ingest(relation.name, slices(table, slice_rows), mode="append",
                                      db_schema_name=relation.schema if qualified else None)
    if appended not in (-1, table.num_rows):  # -1: the driver does not know
        raise WarehouseError(
            f"{relation}: the driver appended {appended} of {table.num_rows} rows")


def read_pending(
    connection: adbc_driver_manager.dbapi.Connection,
    run: Callable[[adbc_driver_manager.dbapi.Cursor], None], chunk_rows: int,
    describe: Callable[[BaseException], str],
) -> PendingBatches:
    """The pending rows of a query `run` executes on a new cursor of `connection`, a connection
    of the reader's own: its result stream as PendingBatches of OUTBOX_SCHEMA, which close the
    cursor and the connection when closed (and here, when the query fails)."""
    cursor: adbc_driver_manager.dbapi.Cursor | None = None

    def close() -> None:
        try:
            if cursor is not None:
                cursor.close()
        finally:
            connection.close()

    try:
        cursor = connection.cursor()
        run(cursor)
        stream = cursor.fetch_record_batch()
    except BaseException:
        close()
        raise
    return PendingBatches(stream, OUTBOX_SCHEMA, chunk_rows, describe, close)


class PendingBatches:
    """A PendingReader over a driver's record-batch stream: batches of `chunk_rows` rows (the last
    one shorter) as `schema`, the driver's columns taken in order. `describe` turns a driver error
    into the line of the WarehouseError raised; `close` runs `on_close` (closing the cursor and
    connection the stream came from) whatever happens."""

    def __init__(
        self, stream: pa.RecordBatchReader, schema: pa.Schema, chunk_rows: int,
        describe: Callable[[BaseException], str], on_close: Callable[[], None],
    ) -> None:
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self._stream = stream
        self._schema = schema
        self._chunk_rows = chunk_rows
        self._describe = describe
        self._on_close = on_close
        self._parts: deque[pa.RecordBatch] = deque()
        self._held = 0  # rows in _parts
        self._done = False

    def _read(self) -> None:
        """Read driver batches until a chunk's worth is held or the stream ends."""
        while self._held < self._chunk_rows and not self._done:
            try:
                batch = self._stream.read_next_batch()
            except StopIteration:
                self._done = True
                return
            except DRIVER_ERRORS as exc:
                raise WarehouseError(f"reading the outbox failed: {self._describe(exc)}") from None
            if batch.num_rows:
                self._parts.append(batch)
                self._held += batch.num_rows

    def _take(self, rows: int) -> pa.RecordBatch:
        """The first `rows` held rows, as one batch (slices share the driver's buffers)."""
        taken: list[pa.RecordBatch] = []
        while rows:
            head = self._parts[0]
            if head.num_rows <= rows:
                taken.append(self._parts.popleft())
            else:
                taken.append(head.slice(0, rows))
                self._parts[0] = head.slice(rows)
            rows -= taken[-1].num_rows
            self._held -= taken[-1].num_rows
        return taken[0] if len(taken) == 1 else pa.concat_batches(taken)

    def next(self) -> pa.RecordBatch | None:
        self._read()
        if not self._held:
            return None
        batch = self._take(min(self._held, self._chunk_rows))
        if batch.schema != self._schema:
            batch = batch.rename_columns(self._schema.names).cast(self._schema)
        return batch

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._parts.clear()
            self._on_close()
