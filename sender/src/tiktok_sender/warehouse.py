"""Warehouse access behind a small interface: the outbox read, receipts and runs written.

Only DuckDB is implemented; `open_warehouse` is the one place that picks an implementation, so a
Postgres one can be added beside it. Table and schema names are validated and quoted; no SQL is
built from row data (values travel as parameters or Arrow tables).

The delivery lease: a warehouse opened for writing holds it until `close()`, so two `sender push`
runs against the same warehouse never select the same pending events. DuckDB's lease is the
exclusive file lock of the read-write connection (released by the OS when the process dies, even
on SIGKILL). A PostgreSQL implementation would take a session advisory lock,
`pg_try_advisory_lock(hashtext('tiktok_outbox.sender:' || schema))`, through the same
`poll_lease` loop. Either waits up to `lock_timeout` seconds, then raises WarehouseBusyError.
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
from typing import Any, ParamSpec, Protocol, TypeVar

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
from tiktok_sender.shard import Shard

OUTBOX_TABLE = "tiktok_events_outbox"
# DuckDB memory limit of a `sender push` connection (not of dbt's, nor of `sender status`):
# the sender's memory must not grow with the outbox or the receipts history.
DUCKDB_MEMORY_LIMIT = "64MB"

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

log = logging.getLogger("tiktok_sender")
P = ParamSpec("P")
T = TypeVar("T")

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
) -> Warehouse:
    """The warehouse of `target`; opened for writing, it holds the delivery lease (waiting up to
    `lock_timeout` seconds for another holder to let go, or until `abort` is set)."""
    if target.type == "duckdb":
        return DuckDBWarehouse(target, read_only=read_only, lock_timeout=lock_timeout, abort=abort)
    raise ConfigError(f"warehouse type '{target.type}' is not supported yet")


class LeaseHeld(Exception):
    """Raised by a lease attempt when another process holds the lease; carries who, if known."""


def poll_lease(
    attempt: Callable[[], T],
    *,
    timeout: float,
    describe: str,
    abort: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call `attempt` until it stops raising LeaseHeld, `timeout` seconds have passed or `abort`
    is set (a signal while waiting)."""
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
                    f"{describe} is in use by another process ({held}){waited}: another "
                    "`sender push` is running, or a dbt build or DuckDB session holds it; "
                    "try again later or wait with --lock-timeout"
                ) from None
            abort.wait(min(delay, remaining))
            delay = min(delay * 2, 1.0)


def _wrap_errors(what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Turn a DuckDB error escaping a warehouse call into one clear WarehouseError."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return fn(*args, **kwargs)
            except duckdb.Error as exc:
                raise WarehouseError(f"{what} failed: {_first_line(exc)}") from None

        return wrapper

    return decorate


class _DuckDBPendingReader:
    def __init__(self, cursor: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader) -> None:
        self._cursor = cursor
        self._reader = reader

    def next(self) -> pa.RecordBatch | None:
        try:
            return self._reader.read_next_batch()
        except StopIteration:
            return None
        except duckdb.Error as exc:
            raise WarehouseError(f"reading the outbox failed: {_first_line(exc)}") from None

    def close(self) -> None:
        self._reader.close()
        self._cursor.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


class DuckDBWarehouse:
    """The DuckDB file dbt builds into; receipts and runs live in the outbox's schema."""

    def __init__(
        self,
        target: WarehouseTarget,
        *,
        read_only: bool = False,
        lock_timeout: float = 0.0,
        abort: threading.Event | None = None,
    ) -> None:
        self.target = target
        path = target.path
        if path is None or not Path(path).is_file():
            raise WarehouseError(
                f"warehouse file not found: {path} (run `dbt build` first, or check "
                "DBT_DUCKDB_PATH / --profiles-dir / --target)"
            )
        self._schema = quote_identifier(target.schema)
        self.outbox = f"{self._schema}.{quote_identifier(OUTBOX_TABLE)}"
        self.receipts = f"{self._schema}.{quote_identifier(RECEIPTS_TABLE)}"
        self.runs = f"{self._schema}.{quote_identifier(RUNS_TABLE)}"

        def connect() -> duckdb.DuckDBPyConnection:
            try:
                return duckdb.connect(str(path), read_only=read_only)
            except duckdb.Error as exc:
                message = _first_line(exc)
                if "lock" in message.lower():
                    holder = re.search(r"\(PID (\d+)\)", message)
                    raise LeaseHeld(f"PID {holder.group(1)}" if holder else "file lock") from None
                raise WarehouseError(f"cannot open the warehouse {path}: {message}") from None

        self._con = poll_lease(
            connect, timeout=lock_timeout, describe=f"the warehouse file {path}", abort=abort
        )
        try:
            # Bounded memory whatever the outbox and receipts sizes: beyond it DuckDB spills to
            # its temp directory (the receipts hash table of the pending query, receipts not
            # checkpointed yet: no checkpoint runs while the outbox is being read).
            if not read_only:
                self._con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        except duckdb.Error as exc:
            self._con.close()
            raise WarehouseError(f"cannot configure the warehouse: {_first_line(exc)}") from None

    # -- schema -----------------------------------------------------------------------------

    def _columns(self, table: str) -> list[str] | None:
        rows = self._con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [self.target.schema, table],
        ).fetchall()
        return [r[0] for r in rows] or None

    @_wrap_errors("checking the outbox")
    def check_outbox(self) -> None:
        columns = self._columns(OUTBOX_TABLE)
        if columns is None:
            raise WarehouseError(
                f"outbox table {self.target.schema}.{OUTBOX_TABLE} not found in {self.target.path} "
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
            self._con.execute(f"create schema if not exists {self._schema}")
            self._con.execute(f"create table if not exists {quoted} ({body})")
            return
        for column in columns:  # new columns are only ever appended at the end
            if column.name not in existing:
                self._con.execute(
                    f"alter table {quoted} add column {quote_identifier(column.name)} {column.sql}"
                )

    @_wrap_errors("creating the delivery tables")
    def ensure_delivery_tables(self) -> None:
        try:
            self._ensure_table(RECEIPTS_TABLE, self.receipts, RECEIPT_COLUMNS)
            self._ensure_table(RUNS_TABLE, self.runs, RUN_COLUMNS)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot create the delivery tables: {_first_line(exc)}") from None

    # -- pending events -----------------------------------------------------------------------

    def _pending_sql(
        self, terminal: Sequence[str], limit: int | None, shard: Shard | None = None
    ) -> tuple[str, list[Any]]:
        """The pending rows: outbox rows without a terminal production receipt.

        An explicit anti join, not a correlated `not exists`: DuckDB decorrelates the latter
        with a join that materialises the whole outbox side before the first row comes out,
        so memory grew with the outbox. The anti join streams the outbox and holds only the
        hash table of terminal receipt keys."""
        select = ", ".join(
            "cast(o.value as double) as value" if c == "value" else f"o.{c}" for c in OUTBOX_COLUMNS
        )
        params: list[Any] = []
        join = ""
        if terminal and self._columns(RECEIPTS_TABLE) is not None:
            marks = ", ".join("?" for _ in terminal)
            join = (
                " anti join (select event_source_id, event, event_id"
                f" from {self.receipts} where test_event_code is null and status in ({marks})) r"
                " on r.event_source_id = o.event_source_id and r.event = o.event"
                " and r.event_id = o.event_id"
            )
            params.extend(terminal)
        sql = f"select {select} from {self.outbox} o{join}"
        if shard is not None:  # the hash of tiktok_sender.shard, in SQL
            sql += (
                " where ('0x' || substr(sha256(coalesce(o.event_id, '')), 1, 8))::bigint % ? = ?"
            )
            params.extend([shard.count, shard.index - 1])
        if limit is not None:
            sql += " order by o.event_time, o.event_id limit ?"
            params.append(limit)
        return sql, params

    @_wrap_errors("counting pending events")
    def count_pending(
        self, terminal: Sequence[str], limit: int | None, shard: Shard | None = None
    ) -> int:
        sql, params = self._pending_sql(terminal, limit, shard)
        try:
            row = self._con.execute(f"select count(*) from ({sql})", params).fetchone()
        except duckdb.Error as exc:
            raise WarehouseError(f"counting pending events failed: {_first_line(exc)}") from None
        return int(row[0]) if row else 0

    @_wrap_errors("reading the outbox")
    def open_pending(
        self, terminal: Sequence[str], limit: int | None, chunk_rows: int,
        shard: Shard | None = None,
    ) -> PendingReader:
        sql, params = self._pending_sql(terminal, limit, shard)
        cursor = self._con.cursor()  # its own connection: receipts are written meanwhile
        try:
            reader = cursor.execute(sql, params).fetch_record_batch(chunk_rows)
        except duckdb.Error as exc:
            cursor.close()
            raise WarehouseError(f"reading the outbox failed: {_first_line(exc)}") from None
        return _DuckDBPendingReader(cursor, reader)

    # -- receipts and runs ---------------------------------------------------------------------

    def append_receipts(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        try:
            self._con.register("_receipts_batch", table)
            try:
                self._con.execute(f"insert into {self.receipts} by name select * from _receipts_batch")
            finally:
                self._con.unregister("_receipts_batch")
        except duckdb.Error as exc:
            raise WarehouseError(f"writing receipts failed: {_first_line(exc)}") from None

    def insert_run(self, row: Mapping[str, Any]) -> None:
        names = [quote_identifier(k) for k in row]
        marks = ", ".join("?" for _ in row)
        try:
            self._con.execute(
                f"insert into {self.runs} ({', '.join(names)}) values ({marks})", list(row.values())
            )
        except duckdb.Error as exc:
            raise WarehouseError(f"writing the run row failed: {_first_line(exc)}") from None

    def update_run(self, run_id: str, row: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{quote_identifier(k)} = ?" for k in row)
        try:
            self._con.execute(
                f"update {self.runs} set {assignments} where run_id = ?", [*row.values(), run_id]
            )
        except duckdb.Error as exc:
            raise WarehouseError(f"updating the run row failed: {_first_line(exc)}") from None

    # -- status ------------------------------------------------------------------------------

    @_wrap_errors("reading the delivery status")
    def status(self) -> StatusReport:
        self.check_outbox()
        has_receipts = self._columns(RECEIPTS_TABLE) is not None
        has_runs = self._columns(RUNS_TABLE) is not None
        try:
            if has_receipts:
                counts = self._con.execute(
                    f"""
                    with r as (
                        select event_source_id, event, event_id,
                               bool_or(status = 'delivered') as d,
                               bool_or(status = 'rejected') as rj,
                               bool_or(status = 'expired') as ex,
                               bool_or(status = 'failed') as f
                        from {self.receipts}
                        where test_event_code is null
                        group by all
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
                ).fetchone()
                test_row = self._con.execute(
                    f"select count(distinct (event_source_id, event, event_id)) from {self.receipts}"
                    " where test_event_code is not null"
                ).fetchone()
                errors = self._con.execute(
                    f"""
                    select api_code, status, count(*) as receipts, any_value(api_message) as example
                    from {self.receipts}
                    where status in ('rejected', 'failed') and test_event_code is null
                    group by api_code, status
                    order by receipts desc, api_code nulls last
                    limit 5
                    """
                ).fetchall()
            else:
                total = self._con.execute(f"select count(*) from {self.outbox}").fetchone()
                counts = (total[0] if total else 0, 0, 0, 0, 0, total[0] if total else 0)
                test_row, errors = (0,), []
            last_run = None
            if has_runs:
                cursor = self._con.execute(
                    f"select * from {self.runs} order by started_at desc limit 1"
                )
                names = [d[0] for d in cursor.description or []]
                row = cursor.fetchone()
                last_run = dict(zip(names, row, strict=True)) if row else None
        except duckdb.Error as exc:
            raise WarehouseError(f"reading the delivery status failed: {_first_line(exc)}") from None
        assert counts is not None
        return StatusReport(
            outbox=int(counts[0]),
            delivered=int(counts[1]),
            rejected=int(counts[2]),
            expired=int(counts[3]),
            failed=int(counts[4]),
            never_sent=int(counts[5]),
            test_events=int(test_row[0]) if test_row else 0,
            last_run=last_run,
            top_errors=[
                {"api_code": e[0], "status": e[1], "receipts": int(e[2]), "example": e[3]}
                for e in errors
            ],
        )

    @_wrap_errors("closing the warehouse")
    def close(self) -> None:
        self._con.close()
