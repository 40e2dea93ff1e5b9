"""PostgreSQL warehouse through ADBC (adbc-driver-postgresql, libpq underneath): the outbox
streamed as Arrow record batches by a binary COPY, receipts appended by ADBC's bulk ingestion
(a binary COPY too), the delivery lease a session advisory lock. One driver: psycopg2, which
dbt-postgres installs for dbt, is not used by the sender.

The connection is a libpq URI built from the dbt target: host, port, user, password, dbname and
the POSTGRES_OPTIONS the target gives (sslmode, sslcert, sslkey, sslrootcert, connect_timeout,
keepalives_idle; `role` is a `set role` once connected, as dbt-postgres does). The URI holds the
password, so it is a Secret, revealed to the driver only; the password, as given and
percent-encoded, is redacted from every driver message.

Two connections:
- the session connection, in autocommit mode, holds the lease and writes the runs and receipts
  tables: each statement commits when it returns, so an append is durable once it has returned;
- the reading connection, opened by `open_pending`, runs the pending query as one
  `COPY (query) TO STDOUT (FORMAT binary)`, which the driver turns into record batches of about
  READ_BATCH_BYTES. The server waits while the sender does not read (TCP back-pressure), so the
  sender holds a driver batch and a chunk whatever the outbox size. The COPY reads the snapshot
  taken when it starts, as on DuckDB, while receipts commit on the other connection. Its values
  (terminal statuses, shard, limit) are inlined as literals (`adbc.inline_literals`): with bound
  parameters the driver would read the whole result before handing out the first batch.

The delivery lease is a set of session advisory locks on the session connection, keyed on the
delivery tables' (the receipts') schema and the shard (`postgres_lease`). The locks belong to
the session: the server releases them when the connection ends, also when the sender is killed.
A connection pooler must therefore keep the session (PgBouncer's session mode, not transaction
mode). Both connections turn the server's idle timeouts off for themselves
(`idle_session_timeout`, PostgreSQL 14+, and `idle_in_transaction_session_timeout`), and the
reading one `statement_timeout` too: the COPY is one statement that lasts as long as the read,
and the connections idle while a slow API holds the sending back; a session ended by the server
would silently let go of the lease. `check_lease` confirms, on the session connection, that the
locks are still held.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import adbc_driver_manager.dbapi
import adbc_driver_postgresql.dbapi
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_postgresql import StatementOptions

from tiktok_sender.errors import WarehouseError
from tiktok_sender.profiles import WarehouseTarget
from tiktok_sender.relations import Relation
from tiktok_sender.settings import Secret
from tiktok_sender.shard import Shard
from tiktok_sender.warehouse import PendingReader
from tiktok_sender.warehouse.adbc import (
    DRIVER_ERRORS,
    error_text,
    ingest,
    inline_literals,
    read_pending,
)
from tiktok_sender.warehouse.base import Dialect, SqlWarehouse
from tiktok_sender.warehouse.pending import PendingQuery
from tiktok_sender.warehouse.postgres_lease import SLOT_DDL, AdvisoryLease, lease_key, shard_slot
from tiktok_sender.warehouse.support import poll_lease, wrap_errors

__all__ = ["APPLICATION_NAME", "PostgresDialect", "PostgresWarehouse", "connection_uri",
           "lease_key", "shard_slot"]

Connection = adbc_driver_manager.dbapi.Connection

APPLICATION_NAME = "tiktok-outbox sender"
DEFAULT_CONNECT_TIMEOUT_S = 10  # dbt-postgres's default
IDLE_SESSION_TIMEOUT_SINCE = 140000  # server_version_num of the first server that has it
READ_BATCH_BYTES = 4 * 2**20  # the size of the driver's batches of pending rows
INGEST_SLICE_ROWS = 65_536  # receipts handed to the driver at a time
# The libpq parameters a target's POSTGRES_OPTIONS become (keepalives_idle only when set).
URI_OPTIONS = ("sslmode", "sslcert", "sslkey", "sslrootcert", "keepalives_idle")
# Receipt columns that carry text from the API, where a NUL character (which PostgreSQL text
# cannot hold) could come from.
API_TEXT_COLUMNS = ("api_message", "request_id")
_MESSAGE_KEY = b"PG_DIAG_MESSAGE_PRIMARY"  # the server's own message in an ADBC error's details
_MARK = re.compile(r"%s")


class PostgresDialect(Dialect):
    param = "%s"
    limit_in_sql = True  # a top-N sort past work_mem switches to an external sort

    def key_filter(self, keys: str, *, keep: bool) -> tuple[str, str]:
        # PostgreSQL plans `exists` as a hash semi or anti join: the outbox streams past a hash
        # table of the keys.
        return "", (
            f"{'' if keep else 'not '}exists (select 1 from ({keys}) k"
            " where k.event_source_id = o.event_source_id and k.event = o.event"
            " and k.event_id = o.event_id)"
        )

    def shard_of(self, event_id: str, count: str) -> str:
        # The first 8 hex digits of sha256(event_id) as an unsigned 32-bit number: `bit(32)`
        # read as bigint keeps the sign bit a value bit.
        digest = f"encode(sha256(convert_to(coalesce({event_id}, ''), 'UTF8')), 'hex')"
        return f"mod(('x' || substr({digest}, 1, 8))::bit(32)::bigint, {count})"


def connection_uri(target: WarehouseTarget, application_name: str) -> Secret:
    """The libpq URI of a postgres `target` (see the module docstring), as a Secret: it holds
    the password."""
    o = target.options
    host = str(o["host"])
    host = f"[{host}]" if ":" in host else quote(host, safe="")
    user = quote(str(o["user"]), safe="")
    if target.password is not None:
        user += ":" + quote(target.password.reveal(), safe="")
    query = {"application_name": application_name,
             "connect_timeout": o.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT_S)}
    query.update({k: o[k] for k in URI_OPTIONS if o.get(k)})
    return Secret(f"postgresql://{user}@{host}:{o['port']}/{quote(str(o['dbname']), safe='')}?"
                  + urlencode(query, quote_via=quote))


def _numbered(sql: str) -> str:
    """`sql` with its `%s` marks numbered, `$1`, `$2`...: PostgreSQL's own placeholders."""
    count = iter(range(1, 1 << 16))
    return _MARK.sub(lambda _: f"${next(count)}", sql)


def _python_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of a query's result as Python values; `numeric`, which the driver hands out as
    text (an opaque Arrow type), as Decimal, as psycopg2 and DuckDB give it."""
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        values = column.to_pylist()
        if isinstance(field.type, pa.OpaqueType) and field.type.type_name == "numeric":
            values = [None if v is None else Decimal(v) for v in values]
        columns.append(values)
    return list(zip(*columns, strict=True))


def _quote_role(name: str) -> str:
    """A role name as a PostgreSQL identifier (any characters, as dbt-postgres allows)."""
    return '"' + name.replace('"', '""') + '"'


def _without_nul(table: pa.Table) -> pa.Table:
    """`table` with NUL characters taken out of the API_TEXT_COLUMNS."""
    for name in API_TEXT_COLUMNS:
        if name in table.column_names:
            index = table.column_names.index(name)
            cleaned = pc.replace_substring(table.column(index), "\x00", "")
            table = table.set_column(index, name, cleaned)
    return table


class PostgresWarehouse(SqlWarehouse):
    """A PostgreSQL database dbt builds into; the tables are where dbt has them (`relations`)."""

    dialect = PostgresDialect()
    driver_errors = DRIVER_ERRORS
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
        self._secrets = self._redacted(target)
        schema = self.relations.receipts.schema  # the lease is the delivery tables'
        self._lease = AdvisoryLease(self, schema, shard, (
            f"the delivery lease of schema {schema}"
            + (f" for shard {shard}" if shard is not None else "") + f" in {self.location()}"))
        self._con = self._connect(reading=False)
        self._closed = False
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

    @staticmethod
    def _redacted(target: WarehouseTarget) -> tuple[Secret, ...]:
        """The target's secrets, and each as it appears percent-encoded in the URI."""
        return tuple(s for secret in target.secrets()
                     for s in (secret, Secret(quote(secret.reveal(), safe=""))))

    def location(self) -> str:
        o = self._options
        return f"database {o['dbname']} at {o['host']}:{o['port']}"

    def error_text(self, exc: BaseException) -> str:
        return error_text(exc, self._secrets, _MESSAGE_KEY)

    def _connect(self, *, reading: bool) -> Connection:
        """A connection of this run, named after it, with the target's role, without the server's
        idle timeouts, read-only where the warehouse or the use is (see the module docstring)."""
        o = self._options
        name = APPLICATION_NAME + f", PID {os.getpid()}"
        if self._shard is not None:
            name += f", shard {self._shard}"
        try:
            con = adbc_driver_postgresql.dbapi.connect(
                connection_uri(self.target, name).reveal(), autocommit=True)
        except DRIVER_ERRORS as exc:
            raise WarehouseError(
                f"cannot connect to PostgreSQL ({o['user']}@{o['host']}:{o['port']}/{o['dbname']}): "
                f"{self.error_text(exc)}"
            ) from None
        settings = ["set idle_in_transaction_session_timeout = 0",
                    "set standard_conforming_strings = on"]  # for adbc.inline_literals
        if o.get("role"):  # as dbt-postgres does
            settings.insert(0, f"set role {_quote_role(str(o['role']))}")
        if reading or self._read_only:
            settings.append("set default_transaction_read_only = on")
        if reading:
            settings.append("set statement_timeout = 0")  # the COPY lasts as long as the read
        try:
            for statement in settings:
                self._run(con, statement)
            # Set, not startup `options`: a server older than 14 refuses an unknown option.
            version = self._run(con, "select current_setting('server_version_num')::int")[1]
            if version[0][0] >= IDLE_SESSION_TIMEOUT_SINCE:
                self._run(con, "set idle_session_timeout = 0")
        except DRIVER_ERRORS as exc:
            con.close()
            raise WarehouseError(f"cannot set up the connection: {self.error_text(exc)}") from None
        return con

    @staticmethod
    def _run(
        con: Connection, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of one statement on `con`, sent as it is (not through COPY,
        which only takes queries: `show`, `set` and the like run too)."""
        with con.cursor() as cur:
            cur.adbc_statement.set_options(**{StatementOptions.USE_COPY.value: "false"})
            cur.execute(_numbered(sql), tuple(params) if params else None)
            if not cur.description:
                return [], []
            return [d[0] for d in cur.description], _python_rows(cur.fetch_arrow_table())

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self._run(self._con, sql, params)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(self._con, sql, params)

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
            with contextlib.suppress(*DRIVER_ERRORS):
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
            self._execute("select pg_advisory_xact_lock(cast(%s as integer), cast(%s as integer))",
                          [self._lease.key, SLOT_DDL])
            super().ensure_delivery_tables()

    # -- pending events ------------------------------------------------------------------------

    @wrap_errors("reading the outbox")
    def open_pending(self, query: PendingQuery, chunk_rows: int) -> PendingReader:
        sql, params = self._pending_sql(query)

        def run(cursor: adbc_driver_manager.dbapi.Cursor) -> None:
            cursor.adbc_statement.set_options(
                **{StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(READ_BATCH_BYTES)})
            cursor.execute(inline_literals(sql, params, self.dialect.param))

        return read_pending(self._connect(reading=True), run, chunk_rows, self.error_text)

    # -- receipts --------------------------------------------------------------------------------

    @wrap_errors("writing receipts")
    def append_receipts(self, table: pa.Table) -> None:
        """Append by bulk ingestion (one binary COPY), committed when it returns."""
        if table.num_rows == 0:
            return
        ingest(self._con, self.relations.receipts, _without_nul(table), INGEST_SLICE_ROWS)

    @wrap_errors("closing the warehouse")
    def close(self) -> None:
        # The server releases a closed session's locks a moment after the client has gone; let
        # go explicitly, so that a run started right after this one finds the lease free.
        if self._closed:
            return
        self._closed = True
        try:
            if not self._read_only:
                with contextlib.suppress(*DRIVER_ERRORS):
                    self._execute("select pg_advisory_unlock_all()")
        finally:
            self._con.close()
