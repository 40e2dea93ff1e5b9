"""PostgreSQL warehouse: the outbox streamed through a server-side cursor, receipts appended with
COPY, the delivery lease a session advisory lock. The driver is psycopg2, which dbt-postgres
installs.

Two connections:
- the session connection, in autocommit mode, holds the lease and writes the runs and receipts
  tables: each statement commits when it returns, so an append is durable once it has returned;
- the reading connection, opened by `open_pending`, runs the pending query in a read-only
  transaction as a named (server-side) cursor and fetches `chunk_rows` rows at a time, so the
  sender holds one chunk whatever the outbox size. Receipts commit on the other connection while
  the read goes on; the cursor reads the snapshot taken when it was opened, as on DuckDB.

The delivery lease is a set of session advisory locks on the session connection, keyed on the
delivery tables' (the receipts') schema and the shard (`warehouse_postgres_lease`). The locks
belong to the session: the server releases them when the connection ends, also when the sender is
killed. A connection pooler must therefore keep the session (PgBouncer's session mode, not
transaction mode). Both connections turn the server's idle timeouts off for themselves
(`idle_session_timeout`, PostgreSQL 14+, and `idle_in_transaction_session_timeout`): they idle
while a slow API holds the sending back, and a session ended by the server would silently let go
of the lease. `check_lease` confirms, on the session connection, that the locks are still held.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.sql
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tiktok_sender.errors import WarehouseError
from tiktok_sender.outbox_schema import OUTBOX_SCHEMA
from tiktok_sender.profiles import WarehouseTarget
from tiktok_sender.relations import Relation
from tiktok_sender.settings import redact
from tiktok_sender.shard import Shard
from tiktok_sender.warehouse import Dialect, PendingReader, SqlWarehouse
from tiktok_sender.warehouse_postgres_lease import SLOT_DDL, AdvisoryLease, lease_key, shard_slot
from tiktok_sender.warehouse_support import (
    first_line,
    poll_lease,
    quote_identifier,
    wrap_errors,
)

__all__ = ["APPLICATION_NAME", "PostgresDialect", "PostgresWarehouse", "lease_key", "shard_slot"]

APPLICATION_NAME = "tiktok-outbox sender"
DEFAULT_CONNECT_TIMEOUT_S = 10  # dbt-postgres's default
IDLE_SESSION_TIMEOUT_SINCE = 140000  # server_version_num of the first server that has it
# Receipt columns that carry text from the API, where a NUL character (which PostgreSQL text
# cannot hold) could come from.
API_TEXT_COLUMNS = ("api_message", "request_id")
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")


class PostgresDialect(Dialect):
    param = "%s"
    limit_in_sql = True  # a top-N sort past work_mem switches to an external sort

    def anti_join(self, keys: str) -> tuple[str, str]:
        # PostgreSQL plans `not exists` as a hash anti join: the outbox streams past a hash table
        # of the terminal receipt keys.
        return "", (
            f"not exists (select 1 from ({keys}) r where r.event_source_id = o.event_source_id"
            " and r.event = o.event and r.event_id = o.event_id)"
        )

    def shard_of(self, event_id: str, count: str) -> str:
        # The first 8 hex digits of sha256(event_id) as an unsigned 32-bit number: `bit(32)`
        # read as bigint keeps the sign bit a value bit. `mod`, not `%`: psycopg2 formats `%`.
        digest = f"encode(sha256(convert_to(coalesce({event_id}, ''), 'UTF8')), 'hex')"
        return f"mod(('x' || substr({digest}, 1, 8))::bit(32)::bigint, {count})"


def _to_batch(rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    # The pending query casts every column to its contract type (`check_outbox` refused the
    # columns that do not cast), so the driver's values fit OUTBOX_SCHEMA.
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(c, type=f.type) for c, f in zip(columns, OUTBOX_SCHEMA, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=OUTBOX_SCHEMA)


class _PostgresPendingReader:
    """Pending rows from a named cursor on a connection of its own, `chunk_rows` at a time."""

    def __init__(
        self,
        warehouse: PostgresWarehouse,
        con: psycopg2.extensions.connection,
        cursor: psycopg2.extensions.cursor,
        chunk_rows: int,
    ) -> None:
        self._warehouse = warehouse
        self._con = con
        self._cursor = cursor
        self._chunk_rows = chunk_rows

    def next(self) -> pa.RecordBatch | None:
        try:
            rows = self._cursor.fetchmany(self._chunk_rows)  # FETCH FORWARD chunk_rows
        except psycopg2.Error as exc:
            raise WarehouseError(
                f"reading the outbox failed: {self._warehouse.error_text(exc)}"
            ) from None
        return _to_batch(rows) if rows else None

    def close(self) -> None:
        try:
            with contextlib.suppress(psycopg2.Error):
                self._cursor.close()
                self._con.rollback()
        finally:
            self._con.close()


class PostgresWarehouse(SqlWarehouse):
    """A PostgreSQL database dbt builds into; the tables are where dbt has them (`relations`)."""

    dialect = PostgresDialect()
    driver_errors = (psycopg2.Error,)
    concurrent_shards = True  # the shards of a set hold leases side by side

    def __init__(
        self,
        target: WarehouseTarget,
        *,
        read_only: bool = False,
        lock_timeout: float = 0.0,
        abort: threading.Event | None = None,
        shard: Shard | None = None,
    ) -> None:
        self._options = target.options
        self._init_names(target, database=str(target.options["dbname"]))
        self._read_only = read_only
        self._shard = shard
        schema = self.relations.receipts.schema  # the lease is the delivery tables'
        self._lease = AdvisoryLease(self, schema, shard, (
            f"the delivery lease of schema {schema}"
            + (f" for shard {shard}" if shard is not None else "") + f" in {self.location()}"))
        self._con = self._connect(readonly=read_only, autocommit=True)
        if read_only:  # `sender status` and the audit: MVCC reads need no lease
            return
        try:
            poll_lease(
                self._lease.take,
                timeout=lock_timeout,
                describe=self._lease.describe,
                hint="another `sender push` is running against this schema",
                abort=abort,
            )
        except BaseException:
            self._con.close()
            raise

    # -- connections ---------------------------------------------------------------------------

    def location(self) -> str:
        o = self._options
        return f"database {o['dbname']} at {o['host']}:{o['port']}"

    def error_text(self, exc: BaseException) -> str:
        return redact(first_line(exc), *self.target.secrets())

    def _connect(self, *, readonly: bool, autocommit: bool) -> psycopg2.extensions.connection:
        """A connection of this run, named after it, with the target's role and without the
        server's idle timeouts (see the module docstring)."""
        o = self._options
        name = APPLICATION_NAME + f", PID {os.getpid()}"
        if self._shard is not None:
            name += f", shard {self._shard}"
        params: dict[str, Any] = {
            "host": o["host"],
            "port": o["port"],
            "user": o["user"],
            "dbname": o["dbname"],
            "application_name": name,
            "connect_timeout": o.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT_S),
        }
        params.update(
            {k: o[k] for k in ("sslmode", "sslcert", "sslkey", "sslrootcert") if k in o}
        )
        if o.get("keepalives_idle"):  # TCP keepalives (libpq sends them by default)
            params["keepalives_idle"] = o["keepalives_idle"]
        if self.target.password is not None:
            params["password"] = self.target.password.reveal()
        try:
            con = psycopg2.connect(**params)
        except psycopg2.Error as exc:
            raise WarehouseError(
                f"cannot connect to PostgreSQL ({o['user']}@{o['host']}:{o['port']}/{o['dbname']}): "
                f"{self.error_text(exc)}"
            ) from None
        try:
            con.set_session(readonly=readonly, autocommit=autocommit)
            with con.cursor() as cur:
                if o.get("role"):  # as dbt-postgres does
                    cur.execute(psycopg2.sql.SQL("set role {}").format(psycopg2.sql.Identifier(str(o["role"]))))
                # Set, not startup `options`: a server older than 14 refuses an unknown option.
                cur.execute("set idle_in_transaction_session_timeout = 0")
                if con.server_version >= IDLE_SESSION_TIMEOUT_SINCE:
                    cur.execute("set idle_session_timeout = 0")
            if not autocommit:
                con.commit()
        except psycopg2.Error as exc:
            con.close()
            raise WarehouseError(f"cannot set up the connection: {self.error_text(exc)}") from None
        return con

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._con.cursor() as cur:
            cur.execute(sql, tuple(params) if params else None)
            if cur.description is None:
                return [], []
            return [d[0] for d in cur.description], cur.fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._con.cursor() as cur:
            cur.execute(sql, tuple(params) if params else None)

    def column_types(self, relation: Relation) -> dict[str, str] | None:
        # From the catalog, which every role sees, not information_schema, which hides the tables
        # the role has no privilege on: a missing grant then fails as such, not as a missing table.
        _, rows = self.query(
            "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a"
            " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = %s and c.relkind in ('r', 'p', 'v', 'm', 'f')"
            " and a.attnum > 0 and not a.attisdropped order by a.attnum",
            [relation.schema, relation.name],
        )
        return {r[0]: r[1] for r in rows} or None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Statements of the block in one transaction on the autocommit connection."""
        self._execute("begin")
        try:
            yield
        except BaseException:
            with contextlib.suppress(psycopg2.Error):
                self._execute("rollback")
            raise
        self._execute("commit")

    # -- the lease -----------------------------------------------------------------------------

    def check_lease(self) -> None:
        """Raise LeaseLostError (one line) unless the session connection still holds this run's
        advisory locks (`AdvisoryLease.check`: one cheap query on pg_locks). Nothing to check for
        a read-only warehouse, which holds no lease."""
        if not self._read_only:
            self._lease.check()

    # -- the delivery tables -------------------------------------------------------------------

    @wrap_errors("creating the delivery tables")
    def ensure_delivery_tables(self) -> None:
        # Shards start together: one creates the tables, the others then find them.
        with self.transaction():
            self._execute("select pg_advisory_xact_lock(%s, %s)", [self._lease.key, SLOT_DDL])
            super().ensure_delivery_tables()

    # -- pending events ------------------------------------------------------------------------

    @wrap_errors("reading the outbox")
    def open_pending(
        self, terminal: Sequence[str], limit: int | None, chunk_rows: int,
        shard: Shard | None = None,
    ) -> PendingReader:
        sql, params = self._pending_sql(terminal, limit, shard)
        # A named cursor lives in a transaction, idle while a slow API holds the sending back:
        # `_connect` turns the server's idle_in_transaction_session_timeout off, so it cannot
        # end the read.
        con = self._connect(readonly=True, autocommit=False)
        try:
            cursor = con.cursor(name=f"tiktok_pending_{uuid.uuid4().hex[:12]}")
            cursor.itersize = chunk_rows
            cursor.execute(sql, tuple(params) if params else None)  # DECLARE ... CURSOR
        except BaseException:
            con.close()
            raise
        return _PostgresPendingReader(self, con, cursor, chunk_rows)

    # -- receipts --------------------------------------------------------------------------------

    @wrap_errors("writing receipts")
    def append_receipts(self, table: pa.Table) -> None:
        """Append in one COPY, committed when it returns (the connection is in autocommit)."""
        if table.num_rows == 0:
            return
        for name in API_TEXT_COLUMNS:
            if name in table.column_names:
                index = table.column_names.index(name)
                cleaned = pc.replace_substring(table.column(index), "\x00", "")
                table = table.set_column(index, name, cleaned)
        data = io.BytesIO()
        pacsv.write_csv(table, data, _CSV)  # nulls unquoted, values quoted: PostgreSQL's CSV
        data.seek(0)
        columns = ", ".join(quote_identifier(n) for n in table.column_names)
        with self._con.cursor() as cur:
            cur.copy_expert(f"copy {self.receipts} ({columns}) from stdin with (format csv)", data)

    @wrap_errors("closing the warehouse")
    def close(self) -> None:
        # The server releases a closed session's locks a moment after the client has gone; let
        # go explicitly, so that a run started right after this one finds the lease free.
        try:
            if not self._read_only and not self._con.closed:
                with contextlib.suppress(psycopg2.Error):
                    self._execute("select pg_advisory_unlock_all()")
        finally:
            self._con.close()
