"""Warehouse access behind a small interface: the outbox read, receipts and runs written.

`open_warehouse` is the one place that picks an implementation: DuckDB here, PostgreSQL in
`warehouse_postgres`. The SQL both run is written once, in `SqlWarehouse`: the pending query
(an anti join of the outbox against terminal production receipts, the shard filter, the
`--limit` order), the delivery status, the runs table and the delivery tables' creation. Each
engine supplies its connection handling, its way of streaming the pending rows and of appending
receipts in bulk, and the few expressions that differ (`Dialect`). Table and schema names are
validated and quoted; no SQL is built from row data (values travel as parameters, Arrow tables
or COPY data).

The delivery lease: a warehouse opened for writing holds it until `close()`, so two `sender push`
runs never select the same pending events. DuckDB's lease is the exclusive file lock of the
read-write connection; PostgreSQL's is a session advisory lock keyed on the schema (and the
shard: shards of one `--shard K/N` set run side by side). Either is released when its holder
dies, even on SIGKILL, and either is waited for through `poll_lease`: up to `lock_timeout`
seconds, then WarehouseBusyError.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Concatenate, ParamSpec, Protocol, TypeVar

import duckdb
import pyarrow as pa

from tiktok_sender.errors import ConfigError, WarehouseBusyError, WarehouseError
from tiktok_sender.profiles import WarehouseTarget
from tiktok_sender.receipts import (
    RECEIPT_COLUMNS,
    RECEIPTS_TABLE,
    RUN_COLUMNS,
    RUNS_TABLE,
    Column,
)
from tiktok_sender.settings import DEFAULT_DUCKDB_MEMORY_LIMIT, memory_bytes
from tiktok_sender.shard import Shard

OUTBOX_TABLE = "tiktok_events_outbox"
# `--limit` reads the pending rows oldest first: DuckDB's external sort spills to disk, but needs
# more working memory than the streaming read (at 64 MB it fails on a million wide rows). A lower
# --duckdb-memory-limit is raised to this for such a run.
DUCKDB_SORT_MEMORY_LIMIT = "128MB"

# Outbox columns the sender reads, in the order of the pending query (value cast to double).
OUTBOX_COLUMNS: tuple[str, ...] = (
    "event_source",
    "event_source_id",
    "event_id",
    "event",
    "event_time",
    "email_sha256",
    "phone_sha256",
    "external_id_sha256",
    "ttclid",
    "ttp",
    "ip",
    "user_agent",
    "page_url",
    "value",
    "currency",
    "order_id",
    "experiment_cell",
)
# The Arrow schema of the pending rows every reader hands out (the outbox contract's types).
OUTBOX_SCHEMA = pa.schema(
    [
        (c, pa.int64() if c == "event_time" else pa.float64() if c == "value" else pa.string())
        for c in OUTBOX_COLUMNS
    ]
)

log = logging.getLogger("tiktok_sender")
P = ParamSpec("P")
T = TypeVar("T")
W = TypeVar("W", bound="SqlWarehouse")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,127}")


def quote_identifier(name: str) -> str:
    """`name` double-quoted after checking it is a plain identifier."""
    if not _IDENTIFIER.fullmatch(name):
        raise ConfigError(f"invalid schema or table name: {name!r}")
    return f'"{name}"'


@dataclass(frozen=True)
class StatusReport:
    """Event-level delivery state of the outbox (production receipts only)."""

    outbox: int
    delivered: int
    rejected: int
    expired: int
    failed: int
    never_sent: int
    test_events: int
    last_run: Mapping[str, Any] | None
    top_errors: Sequence[Mapping[str, Any]]

    @property
    def pending(self) -> int:
        return self.failed + self.never_sent


class PendingReader(Protocol):
    def next(self) -> pa.RecordBatch | None: ...

    def close(self) -> None: ...


class Warehouse(Protocol):
    """What the sender needs from a warehouse. Every call happens on one thread.

    An instance opened for writing holds the delivery lease (see the module docstring) from
    `open_warehouse` until `close()`."""

    target: WarehouseTarget

    def check_outbox(self) -> None: ...

    def ensure_delivery_tables(self) -> None: ...

    def count_pending(
        self, terminal: Sequence[str], limit: int | None, shard: Shard | None = None
    ) -> int: ...

    def open_pending(
        self, terminal: Sequence[str], limit: int | None, chunk_rows: int,
        shard: Shard | None = None,
    ) -> PendingReader: ...

    def append_receipts(self, table: pa.Table) -> None: ...

    def insert_run(self, row: Mapping[str, Any]) -> None: ...

    def update_run(self, run_id: str, row: Mapping[str, Any]) -> None: ...

    def status(self) -> StatusReport: ...

    def close(self) -> None: ...


def open_warehouse(
    target: WarehouseTarget,
    *,
    read_only: bool = False,
    lock_timeout: float = 0.0,
    abort: threading.Event | None = None,
    shard: Shard | None = None,
    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
) -> SqlWarehouse:
    """The warehouse of `target`; opened for writing, it holds the delivery lease (waiting up to
    `lock_timeout` seconds for another holder to let go, or until `abort` is set). `shard` is the
    run's `--shard`: where the lease allows it (PostgreSQL), shards of one set run side by side."""
    if target.type == "duckdb":
        return DuckDBWarehouse(target, read_only=read_only, lock_timeout=lock_timeout, abort=abort,
                               memory_limit=memory_limit)
    if target.type == "postgres":
        try:
            from tiktok_sender.warehouse_postgres import PostgresWarehouse
        except ModuleNotFoundError as exc:
            if exc.name != "psycopg2":
                raise
            raise ConfigError(
                "postgres targets need psycopg2 (installed with dbt-postgres, or "
                "`pip install 'tiktok-outbox-sender[postgres]'`)"
            ) from None

        return PostgresWarehouse(
            target, read_only=read_only, lock_timeout=lock_timeout, abort=abort, shard=shard
        )
    raise ConfigError(f"warehouse type '{target.type}' is not supported")


class LeaseHeld(Exception):
    """Raised by a lease attempt when another process holds the lease; carries who, if known."""


def poll_lease(
    attempt: Callable[[], T],
    *,
    timeout: float,
    describe: str,
    hint: str = "another `sender push` is running, or a dbt build or DuckDB session holds it",
    abort: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call `attempt` until it stops raising LeaseHeld, `timeout` seconds have passed or `abort`
    is set (a signal while waiting). `hint` says, in the final error, who usually holds it."""
    deadline = clock() + max(timeout, 0.0)
    delay = 0.05
    abort = abort or threading.Event()
    announced = False
    while True:
        try:
            return attempt()
        except LeaseHeld as held:
            remaining = deadline - clock()
            if not announced and remaining > 0 and not abort.is_set():
                log.info("%s is in use by another process (%s); waiting up to %g s",
                         describe, held, timeout)
                announced = True
            if remaining <= 0 or abort.is_set():
                waited = f"; waited {timeout:g} s" if timeout > 0 else ""
                raise WarehouseBusyError(
                    f"{describe} is in use by another process ({held}){waited}: {hint}; "
                    "try again later or wait with --lock-timeout"
                ) from None
            abort.wait(min(delay, remaining))
            delay = min(delay * 2, 1.0)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else exc.__class__.__name__


def _wrap_errors(
    what: str,
) -> Callable[[Callable[Concatenate[W, P], T]], Callable[Concatenate[W, P], T]]:
    """Turn a driver error escaping a warehouse method into one clear WarehouseError."""

    def decorate(fn: Callable[Concatenate[W, P], T]) -> Callable[Concatenate[W, P], T]:
        @functools.wraps(fn)
        def wrapper(self: W, /, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return fn(self, *args, **kwargs)
            except self.driver_errors as exc:
                raise WarehouseError(f"{what} failed: {self.error_text(exc)}") from None

        return wrapper

    return decorate


class Dialect:
    """The SQL that differs between engines; DuckDB's by default."""

    param: ClassVar[str] = "?"  # the driver's parameter placeholder
    # Whether `--limit` is a SQL LIMIT. DuckDB runs ORDER BY + LIMIT as a top-N that holds N rows
    # in memory and cannot spill: past the memory limit a large --limit fails. Without LIMIT
    # the ORDER BY is an external sort that spills, and the reader stops after N rows.
    limit_in_sql: ClassVar[bool] = False

    def anti_join(self, keys: str) -> tuple[str, str]:
        """(join clause, where condition) keeping the outbox rows `o` whose key is not among the
        rows of the query `keys` (event_source_id, event, event_id).

        DuckDB: an explicit anti join, not a correlated `not exists`, which DuckDB decorrelates
        with a join that materialises the whole outbox side before the first row comes out (memory
        grew with the outbox). The anti join streams the outbox and holds only the hash table of
        terminal receipt keys."""
        join = (
            f" anti join ({keys}) r on r.event_source_id = o.event_source_id"
            " and r.event = o.event and r.event_id = o.event_id"
        )
        return join, ""

    def shard_of(self, event_id: str, count: str) -> str:
        """The 0-based shard of `event_id` among `count` (tiktok_sender.shard's hash)."""
        return f"('0x' || substr(sha256(coalesce({event_id}, '')), 1, 8))::bigint % {count}"


class SqlWarehouse:
    """The SQL every engine shares. Subclasses connect, stream pending rows, append receipts."""

    dialect: ClassVar[Dialect] = Dialect()
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    target: WarehouseTarget

    def _init_names(self, target: WarehouseTarget) -> None:
        self.target = target
        self._schema = quote_identifier(target.schema)
        self.outbox = f"{self._schema}.{quote_identifier(OUTBOX_TABLE)}"
        self.receipts = f"{self._schema}.{quote_identifier(RECEIPTS_TABLE)}"
        self.runs = f"{self._schema}.{quote_identifier(RUNS_TABLE)}"

    # -- what an engine provides -------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a query (driver errors pass through)."""
        raise NotImplementedError

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement, committed when it returns."""
        raise NotImplementedError

    def error_text(self, exc: BaseException) -> str:
        """A driver error as one line fit for the user (no secret in it)."""
        return first_line(exc)

    def location(self) -> str:
        """Where the warehouse is, for messages."""
        raise NotImplementedError

    def open_pending(
        self, terminal: Sequence[str], limit: int | None, chunk_rows: int,
        shard: Shard | None = None,
    ) -> PendingReader:
        """The pending rows (`_pending_sql`), streamed `chunk_rows` at a time as OUTBOX_SCHEMA
        batches, while receipts are appended."""
        raise NotImplementedError

    def append_receipts(self, table: pa.Table) -> None:
        """Append receipts in bulk, durable when this returns."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the connections, letting go of the lease."""
        raise NotImplementedError

    # -- schema -----------------------------------------------------------------------------

    def _columns(self, table: str) -> list[str] | None:
        _, rows = self.query(
            "select column_name from information_schema.columns where table_schema = "
            f"{self.dialect.param} and table_name = {self.dialect.param} order by ordinal_position",
            [self.target.schema, table],
        )
        return [r[0] for r in rows] or None

    @_wrap_errors("checking the outbox")
    def check_outbox(self) -> None:
        columns = self._columns(OUTBOX_TABLE)
        if columns is None:
            raise WarehouseError(
                f"outbox table {self.target.schema}.{OUTBOX_TABLE} not found in {self.location()} "
                "(run `dbt build` first)"
            )
        missing = [c for c in OUTBOX_COLUMNS if c not in columns]
        if missing:
            raise WarehouseError(
                f"outbox table {self.target.schema}.{OUTBOX_TABLE} lacks column(s): "
                + ", ".join(missing)
            )

    def _ensure_table(self, table: str, quoted: str, columns: Iterable[Column]) -> None:
        existing = self._columns(table)
        if existing is None:
            body = ", ".join(f"{quote_identifier(c.name)} {c.sql}" for c in columns)
            self._execute(f"create schema if not exists {self._schema}")
            self._execute(f"create table if not exists {quoted} ({body})")
            return
        for column in columns:  # new columns are only ever appended at the end
            if column.name not in existing:
                self._execute(
                    f"alter table {quoted} add column {quote_identifier(column.name)} {column.sql}"
                )

    @_wrap_errors("creating the delivery tables")
    def ensure_delivery_tables(self) -> None:
        self._ensure_table(RECEIPTS_TABLE, self.receipts, RECEIPT_COLUMNS)
        self._ensure_table(RUNS_TABLE, self.runs, RUN_COLUMNS)

    # -- pending events -----------------------------------------------------------------------

    def _pending_sql(
        self, terminal: Sequence[str], limit: int | None, shard: Shard | None = None,
        *, ordered: bool = True,
    ) -> tuple[str, list[Any]]:
        """The pending rows: outbox rows without a terminal production receipt (optionally of one
        shard, the `limit` oldest first), columns in OUTBOX_COLUMNS order, value as a double.
        Where the dialect has no `limit_in_sql`, the rows come oldest first and the reader stops
        after `limit`; `ordered=False` leaves the order (and that limit) out, for counting."""
        mark = self.dialect.param
        select = ", ".join(
            "cast(o.value as double precision) as value" if c == "value" else f"o.{c}"
            for c in OUTBOX_COLUMNS
        )
        params: list[Any] = []
        join, conditions = "", []
        if terminal and self._columns(RECEIPTS_TABLE) is not None:
            keys = (
                f"select event_source_id, event, event_id from {self.receipts}"
                f" where test_event_code is null and status in ({', '.join(mark for _ in terminal)})"
            )
            join, condition = self.dialect.anti_join(keys)
            if condition:
                conditions.append(condition)
            params.extend(terminal)
        if shard is not None:
            conditions.append(f"{self.dialect.shard_of('o.event_id', mark)} = {mark}")
            params.extend([shard.count, shard.index - 1])
        sql = f"select {select} from {self.outbox} o{join}"
        if conditions:
            sql += " where " + " and ".join(conditions)
        if limit is not None and ordered:
            sql += " order by o.event_time, o.event_id"
            if self.dialect.limit_in_sql:
                sql += f" limit {mark}"
                params.append(limit)
        return sql, params

    @_wrap_errors("counting pending events")
    def count_pending(
        self, terminal: Sequence[str], limit: int | None, shard: Shard | None = None
    ) -> int:
        sql, params = self._pending_sql(terminal, limit, shard, ordered=False)
        _, rows = self.query(f"select count(*) from ({sql}) pending", params)
        count = int(rows[0][0]) if rows else 0
        return count if limit is None else min(count, limit)

    # -- runs --------------------------------------------------------------------------------

    @_wrap_errors("writing the run row")
    def insert_run(self, row: Mapping[str, Any]) -> None:
        names = ", ".join(quote_identifier(k) for k in row)
        marks = ", ".join(self.dialect.param for _ in row)
        self._execute(f"insert into {self.runs} ({names}) values ({marks})", list(row.values()))

    @_wrap_errors("updating the run row")
    def update_run(self, run_id: str, row: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{quote_identifier(k)} = {self.dialect.param}" for k in row)
        self._execute(
            f"update {self.runs} set {assignments} where run_id = {self.dialect.param}",
            [*row.values(), run_id],
        )

    # -- status ------------------------------------------------------------------------------

    @_wrap_errors("reading the delivery status")
    def status(self) -> StatusReport:
        self.check_outbox()
        has_receipts = self._columns(RECEIPTS_TABLE) is not None
        has_runs = self._columns(RUNS_TABLE) is not None
        if has_receipts:
            _, rows = self.query(
                f"""
                with r as (
                    select event_source_id, event, event_id,
                           bool_or(status = 'delivered') as d,
                           bool_or(status = 'rejected') as rj,
                           bool_or(status = 'expired') as ex,
                           bool_or(status = 'failed') as f
                    from {self.receipts}
                    where test_event_code is null
                    group by event_source_id, event, event_id
                )
                select count(*),
                       count(*) filter (where r.d),
                       count(*) filter (where not coalesce(r.d, false) and r.rj),
                       count(*) filter (where not coalesce(r.d or r.rj, false) and r.ex),
                       count(*) filter (where not coalesce(r.d or r.rj or r.ex, false) and r.f),
                       count(*) filter (where r.event_id is null)
                from {self.outbox} o
                left join r using (event_source_id, event, event_id)
                """
            )
            counts = rows[0]
            _, test_rows = self.query(
                f"select count(distinct (event_source_id, event, event_id)) from {self.receipts}"
                " where test_event_code is not null"
            )
            test_events = int(test_rows[0][0])
            _, errors = self.query(
                f"""
                select api_code, status, count(*) as receipts, min(api_message) as example
                from {self.receipts}
                where status in ('rejected', 'failed') and test_event_code is null
                group by api_code, status
                order by receipts desc, api_code nulls last
                limit 5
                """
            )
        else:
            _, rows = self.query(f"select count(*) from {self.outbox}")
            total = int(rows[0][0])
            counts, test_events, errors = (total, 0, 0, 0, 0, total), 0, []
        last_run = None
        if has_runs:
            names, runs = self.query(f"select * from {self.runs} order by started_at desc limit 1")
            last_run = dict(zip(names, runs[0], strict=True)) if runs else None
        return StatusReport(
            outbox=int(counts[0]),
            delivered=int(counts[1]),
            rejected=int(counts[2]),
            expired=int(counts[3]),
            failed=int(counts[4]),
            never_sent=int(counts[5]),
            test_events=test_events,
            last_run=last_run,
            top_errors=[
                {"api_code": e[0], "status": e[1], "receipts": int(e[2]), "example": e[3]}
                for e in errors
            ],
        )


class _DuckDBPendingReader:
    def __init__(
        self, cursor: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader, limit: int | None
    ) -> None:
        self._cursor = cursor
        self._reader = reader
        self._left = limit  # rows still to hand out (`--limit`), None for all

    def next(self) -> pa.RecordBatch | None:
        if self._left is not None and self._left <= 0:
            return None
        try:
            batch = self._reader.read_next_batch()
        except StopIteration:
            return None
        except duckdb.Error as exc:
            raise WarehouseError(f"reading the outbox failed: {first_line(exc)}") from None
        if self._left is not None:
            batch = batch.slice(0, self._left)
            self._left -= batch.num_rows
        return batch

    def close(self) -> None:
        self._reader.close()
        self._cursor.close()


class DuckDBWarehouse(SqlWarehouse):
    """The DuckDB file dbt builds into; receipts and runs live in the outbox's schema."""

    driver_errors = (duckdb.Error,)

    def __init__(
        self,
        target: WarehouseTarget,
        *,
        read_only: bool = False,
        lock_timeout: float = 0.0,
        abort: threading.Event | None = None,
        memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
    ) -> None:
        memory_bytes(memory_limit)  # a size, checked before it goes into SQL
        self._memory_limit = memory_limit
        path = target.path
        if path is None or not Path(path).is_file():
            raise WarehouseError(
                f"warehouse file not found: {path} (run `dbt build` first, or check "
                "DBT_DUCKDB_PATH / --profiles-dir / --target)"
            )
        self._init_names(target)

        def connect() -> duckdb.DuckDBPyConnection:
            try:
                return duckdb.connect(str(path), read_only=read_only)
            except duckdb.Error as exc:
                message = first_line(exc)
                if "lock" in message.lower():
                    holder = re.search(r"\(PID (\d+)\)", message)
                    raise LeaseHeld(f"PID {holder.group(1)}" if holder else "file lock") from None
                raise WarehouseError(f"cannot open the warehouse {path}: {message}") from None

        self._con = poll_lease(
            connect, timeout=lock_timeout, describe=f"the warehouse file {path}", abort=abort
        )
        try:
            # Memory bounded by --duckdb-memory-limit: beyond it DuckDB spills to its temp
            # directory where it can, and fails where it cannot (the receipts hash table of the
            # pending query and the receipts committed while the outbox is read grow with the
            # history and the run: settings.DEFAULT_DUCKDB_MEMORY_LIMIT). One thread: with two,
            # the anti join's partitions do not fit a 64 MB limit and it fails instead of
            # spilling once the receipts reach about a million rows.
            if not read_only:
                self._con.execute(f"set memory_limit = '{memory_limit.strip()}'")
                self._con.execute("set threads = 1")
        except duckdb.Error as exc:
            self._con.close()
            raise WarehouseError(f"cannot configure the warehouse: {first_line(exc)}") from None

    def location(self) -> str:
        return str(self.target.path)

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = self._con.execute(sql, list(params))
        names = [d[0] for d in cursor.description or []]
        return names, cursor.fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql, list(params))

    @_wrap_errors("reading the outbox")
    def open_pending(
        self, terminal: Sequence[str], limit: int | None, chunk_rows: int,
        shard: Shard | None = None,
    ) -> PendingReader:
        sql, params = self._pending_sql(terminal, limit, shard)
        if limit is not None and memory_bytes(self._memory_limit) < memory_bytes(DUCKDB_SORT_MEMORY_LIMIT):
            self._con.execute(f"set memory_limit = '{DUCKDB_SORT_MEMORY_LIMIT}'")
        cursor = self._con.cursor()  # its own connection: receipts are written meanwhile
        try:
            result = cursor.execute(sql, params)
            # `to_arrow_reader` is the newer name of `fetch_record_batch` (deprecated in 1.5)
            stream = getattr(result, "to_arrow_reader", None) or result.fetch_record_batch
            reader = stream(chunk_rows)
        except duckdb.Error:
            cursor.close()
            raise
        return _DuckDBPendingReader(cursor, reader, limit)

    @_wrap_errors("writing receipts")
    def append_receipts(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._con.register("_receipts_batch", table)
        try:
            self._con.execute(f"insert into {self.receipts} by name select * from _receipts_batch")
        finally:
            self._con.unregister("_receipts_batch")

    @_wrap_errors("closing the warehouse")
    def close(self) -> None:
        self._con.close()
