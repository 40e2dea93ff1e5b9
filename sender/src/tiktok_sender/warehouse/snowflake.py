"""Snowflake through ADBC (adbc-driver-snowflake): the outbox streamed as Arrow record batches,
receipts appended by the driver's bulk ingestion, the lease by claim rows.

The connection is built from the dbt-snowflake target (`profiles._snowflake_target`): account,
user, database, warehouse, role, and the authentication dbt-snowflake's `authenticator` names,
handed to the driver, which does it (AUTHENTICATORS): a password, a key pair (`private_key_path`
or `private_key`, with `private_key_passphrase`), an OAuth `token`, the external browser, MFA or
Okta. `host`, `port` and `protocol` reach a Snowflake elsewhere than `<account>.snowflakecomputing.com`
(the emulator of the tests: scripts/snowflake_emulator.py). Secrets go to the driver only and are
redacted from its messages. Each session runs in UTC; every statement carries the target's
`query_tag`, else APPLICATION_NAME, as its query tag.

Names: dbt-snowflake does not quote identifiers (its default `quoting`), so Snowflake stores them
upper-cased. The sender folds the outbox's, the delivery tables' and their columns' names the same
way (a project that turns quoting on for these relations is not supported), and hands column names
back in lower case, as the other engines give them.

- Pending rows: the pending query on a connection of its own, read with `fetch_record_batch`;
  the driver downloads the result's chunks as Arrow (`PendingBatches` cuts and casts them).
  Integers arrive as int64 (the driver's `use_high_precision` off), timestamps in UTC.
- Receipts: `adbc.ingest` in slices of INGEST_SLICE_ROWS rows: the driver writes Parquet files,
  PUTs them to a temporary stage and runs one COPY INTO when all are uploaded (`copy_concurrency`
  0), so an append is one statement. Files are written and uploaded one at a time: a receipts
  append is one or two files, and the emulator takes one call at a time per session.
- Runs: ordinary UPDATEs; `mark_crashed_runs` reads the ids, then updates them (Snowflake has no
  `returning`).
- The lease: Snowflake has no advisory lock. `claims.ClaimLease` (rows in
  `TIKTOK_DELIVERY_LEASES` next to the runs table), swept with a DELETE on release.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import adbc_driver_manager.dbapi
import adbc_driver_snowflake.dbapi
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_snowflake import DatabaseOptions, StatementOptions

from tiktok_sender.errors import ConfigError, WarehouseError
from tiktok_sender.profiles import WarehouseTarget
from tiktok_sender.relations import Relation
from tiktok_sender.settings import Secret
from tiktok_sender.shard import Shard
from tiktok_sender.tables.receipts import CRASHED_MESSAGE, RUN_CRASHED, RUN_RUNNING
from tiktok_sender.warehouse import PendingReader
from tiktok_sender.warehouse.adbc import DRIVER_ERRORS, error_text, ingest, read_pending
from tiktok_sender.warehouse.base import Dialect, SqlWarehouse
from tiktok_sender.warehouse.claims import LEASE_TABLE, ClaimLease, take_lease
from tiktok_sender.warehouse.pending import PendingQuery
from tiktok_sender.warehouse.support import quote_identifier, wrap_errors

log = logging.getLogger("tiktok_sender")

__all__ = ["AUTHENTICATORS", "SnowflakeDialect", "SnowflakeWarehouse", "connection_options"]

Connection = adbc_driver_manager.dbapi.Connection

APPLICATION_NAME = "tiktok-outbox-sender"
INGEST_SLICE_ROWS = 65_536
# dbt-snowflake's `authenticator` values -> the driver's auth_type (an https:// URL is Okta's).
AUTHENTICATORS = {
    "snowflake": "auth_snowflake",
    "externalbrowser": "auth_ext_browser",
    "oauth": "auth_oauth",
    "snowflake_jwt": "auth_jwt",
    "username_password_mfa": "auth_mfa",
}
# How the driver appends (see the module docstring).
INGEST_OPTIONS = {
    StatementOptions.INGEST_WRITER_CONCURRENCY.value: "1",
    StatementOptions.INGEST_UPLOAD_CONCURRENCY.value: "1",
    StatementOptions.INGEST_COPY_CONCURRENCY.value: "0",
}


class SnowflakeDialect(Dialect):
    param = "?"
    limit_in_sql = True

    def replace_all(self, text: str, pattern: str, replacement: str) -> str:
        return f"regexp_replace({text}, {pattern}, {replacement})"  # every match by default

    def column_type(self, sql_type: str) -> str:
        return {"timestamp": "timestamp_ntz"}.get(sql_type, sql_type)

    def stored(self, name: str) -> str:
        return name.upper()  # dbt-snowflake's names are unquoted: Snowflake upper-cases them

    def key_filter(self, keys: str, *, keep: bool) -> tuple[str, str]:
        return "", (
            f"{'' if keep else 'not '}exists (select 1 from ({keys}) k"
            " where k.event_source_id = o.event_source_id and k.event = o.event"
            " and k.event_id = o.event_id)"
        )

    def shard_of(self, event_id: str, count: str) -> str:
        return (f"mod(to_number(substr(sha2(coalesce({event_id}, ''), 256), 1, 8), 'XXXXXXXX'),"
                f" {count})")


def connection_options(target: WarehouseTarget) -> dict[str, str]:
    """The driver's database options for a snowflake `target`, secrets revealed: for the driver
    only, never to be shown."""
    o = target.options
    options = {
        DatabaseOptions.ACCOUNT.value: str(o["account"]),
        DatabaseOptions.DATABASE.value: str(o["database"]),
        DatabaseOptions.SCHEMA.value: target.schema,
        DatabaseOptions.APPLICATION_NAME.value: APPLICATION_NAME,
        DatabaseOptions.USE_HIGH_PRECISION.value: "false",  # NUMBER(p, 0) as int64
    }
    if o.get("user"):
        options["username"] = str(o["user"])
    for key, option in (("warehouse", DatabaseOptions.WAREHOUSE), ("role", DatabaseOptions.ROLE),
                        ("host", DatabaseOptions.HOST), ("port", DatabaseOptions.PORT),
                        ("protocol", DatabaseOptions.PROTOCOL)):
        if o.get(key) not in (None, ""):
            options[option.value] = str(o[key])
    if o.get("connect_timeout") not in (None, ""):
        options[DatabaseOptions.LOGIN_TIMEOUT.value] = f"{int(o['connect_timeout'])}s"
    authenticator = str(o.get("authenticator") or "snowflake").strip()
    secrets = target.credentials
    if authenticator.lower().startswith("https://"):
        options[DatabaseOptions.AUTH_TYPE.value] = "auth_okta"
        options[DatabaseOptions.AUTH_OKTA_URL.value] = authenticator
    elif authenticator.lower() in AUTHENTICATORS:
        options[DatabaseOptions.AUTH_TYPE.value] = AUTHENTICATORS[authenticator.lower()]
    else:
        raise ConfigError(
            f"snowflake target '{target.target}': authenticator {authenticator!r} is not one the "
            f"sender knows ({', '.join(AUTHENTICATORS)} or an https:// Okta URL)")
    if "private_key" in secrets or o.get("private_key_path"):  # a key pair: dbt-snowflake's rule
        options[DatabaseOptions.AUTH_TYPE.value] = "auth_jwt"
        if "private_key" in secrets:
            options[DatabaseOptions.JWT_PRIVATE_KEY_VALUE.value] = secrets["private_key"].reveal()
        else:
            options[DatabaseOptions.JWT_PRIVATE_KEY.value] = str(o["private_key_path"])
        if "private_key_passphrase" in secrets:
            options[DatabaseOptions.JWT_PRIVATE_KEY_PASSWORD.value] = (
                secrets["private_key_passphrase"].reveal())
    if "token" in secrets:
        options[DatabaseOptions.AUTH_TOKEN.value] = secrets["token"].reveal()
    if target.password is not None:
        options["password"] = target.password.reveal()
    return options


def _parameters(params: Sequence[Any]) -> pa.RecordBatch:
    """Parameters as the one row the driver binds. The driver binds no Arrow timestamp and no
    null-typed column: a datetime (naive UTC, as the sender writes them) goes as its ISO text,
    which Snowflake reads as a TIMESTAMP_NTZ, and a None as a null string."""
    columns = []
    for value in params:
        if isinstance(value, datetime):
            value = value.isoformat(sep=" ")
        columns.append(pa.array([value], pa.string() if value is None else None))
    return pa.record_batch(columns, names=[str(i) for i in range(len(columns))])


def _python_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """A result's rows as Python values, timestamps as naive UTC datetimes to the microsecond."""
    columns = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type):
            if column.type.tz is not None:
                column = pc.cast(column, pa.timestamp(column.type.unit))  # UTC wall time
            column = column.cast(pa.timestamp("us"), safe=False)
        columns.append(column.to_pylist())
    return list(zip(*columns, strict=True))


class SnowflakeWarehouse(SqlWarehouse):
    """The database of a snowflake target; tables where dbt has them (`relations`), folded."""

    dialect: ClassVar[Dialect] = SnowflakeDialect()
    driver_errors = DRIVER_ERRORS

    def __init__(
        self,
        target: WarehouseTarget,
        *,
        read_only: bool = False,
        lock_timeout: float = 0.0,
        abort: threading.Event | None = None,
    ) -> None:
        self.target = target
        self._database = str(target.options["database"])
        self._secrets: tuple[Secret, ...] = target.secrets()
        self._query_tag = str(target.options.get("query_tag") or APPLICATION_NAME)
        self._lease: ClaimLease | None = None
        self._con = self._connect()
        try:
            self._init_names(target, database=self._database)
            if not read_only:
                self._lease = take_lease(self, Relation(self.relations.runs.schema,
                                                        self.dialect.stored(LEASE_TABLE)),
                                         timeout=lock_timeout, abort=abort,
                                         hint="another `sender push` is running against this schema")
        except BaseException:
            self._con.close()
            raise

    # -- connections ---------------------------------------------------------------------------

    def location(self) -> str:
        o = self.target.options
        return f"database {self._database} of Snowflake account {o.get('account')}"

    def error_text(self, exc: BaseException) -> str:
        return error_text(exc, self._secrets)

    def _connect(self) -> Connection:
        """A session in autocommit mode, in UTC, its queries tagged (see the module docstring)."""
        try:
            con = adbc_driver_snowflake.dbapi.connect(db_kwargs=connection_options(self.target),
                                                      autocommit=True)
        except DRIVER_ERRORS as exc:
            raise WarehouseError(
                f"cannot connect to Snowflake ({self.target.describe()}): {self.error_text(exc)}"
            ) from None
        try:
            self._run(con, "alter session set timezone = 'UTC'")
        except DRIVER_ERRORS as exc:
            con.close()
            raise WarehouseError(f"cannot set up the session: {self.error_text(exc)}") from None
        return con

    def _tagged(self, cursor: adbc_driver_manager.dbapi.Cursor) -> adbc_driver_manager.dbapi.Cursor:
        """`cursor`, its statements carrying the target's `query_tag`, else APPLICATION_NAME."""
        cursor.adbc_statement.set_options(**{StatementOptions.QUERY_TAG.value: self._query_tag})
        return cursor

    def _run(self, con: Connection, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._tagged(con.cursor()) as cur:
            cur.execute(sql, _parameters(params) if params else None)
            if not cur.description:
                return [], []
            names = [str(d[0]).lower() for d in cur.description]
            return names, _python_rows(cur.fetch_arrow_table())

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self._run(self._con, sql, params)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(self._con, sql, params)

    def column_types(self, relation: Relation) -> dict[str, str] | None:
        """Column name (lower case) -> type, NUMBER of scale 0 spelt BIGINT (what the outbox
        check reads as an integer)."""
        _, rows = self.query(
            "select column_name, data_type, numeric_scale from information_schema.columns"
            " where table_schema = ? and table_name = ? order by ordinal_position",
            [self.dialect.stored(relation.schema), self.dialect.stored(relation.name)])
        return {str(name).lower(): "BIGINT" if str(kind).upper() == "NUMBER" and scale == 0 else str(kind)
                for name, kind, scale in rows} or None

    def table_names(self, schema: str) -> set[str]:
        _, rows = self.query(
            "select table_name from information_schema.tables where table_schema = ?",
            [self.dialect.stored(schema)])
        return {str(r[0]).lower() for r in rows}

    # -- pending events ------------------------------------------------------------------------

    @wrap_errors("reading the outbox")
    def open_pending(self, query: PendingQuery, chunk_rows: int) -> PendingReader:
        sql, params = self._pending_sql(query)

        def run(cursor: adbc_driver_manager.dbapi.Cursor) -> None:
            self._tagged(cursor).execute(sql, _parameters(params) if params else None)

        return read_pending(self._connect(), run, chunk_rows, self.error_text)

    # -- receipts and runs -----------------------------------------------------------------------

    @wrap_errors("writing receipts")
    def append_receipts(self, table: pa.Table) -> None:
        """Append by bulk ingestion (one COPY INTO), committed when it returns. The driver takes
        the table's name alone: it is found in the session's schema, set to the receipts'."""
        if table.num_rows == 0:
            return
        receipts = self.relations.receipts
        self._execute(f"use schema {self.dialect.identifier(self._database)}."
                      f"{quote_identifier(receipts.schema)}")
        ingest(self._con, receipts, table, INGEST_SLICE_ROWS, qualified=False,
               options={**INGEST_OPTIONS, StatementOptions.QUERY_TAG.value: self._query_tag})

    @wrap_errors("marking crashed runs")
    def mark_crashed_runs(self, run_id: str, shard: Shard | None) -> int:
        """`SqlWarehouse.mark_crashed_runs`: the lease is one for every shard, so every other
        `running` row is of a run that cannot be alive; read, then updated."""
        if self.column_types(self.relations.runs) is None:
            return 0
        _, rows = self.query(f"select run_id from {self.runs} where outcome = ? and run_id <> ?",
                             [RUN_RUNNING, run_id])
        if rows:
            self._execute(
                f"update {self.runs} set outcome = ?, message = ? where outcome = ? and run_id <> ?",
                [RUN_CRASHED, CRASHED_MESSAGE.format(run_id=run_id), RUN_RUNNING, run_id])
            log.warning("%d earlier run(s) left `running` marked crashed: %s", len(rows),
                        ", ".join(sorted(str(r[0]) for r in rows)))
        return len(rows)

    # -- the lease -----------------------------------------------------------------------------

    def check_lease(self) -> None:
        if self._lease is not None:
            self._lease.check()

    @wrap_errors("closing the warehouse")
    def close(self) -> None:
        try:
            if self._lease is not None:
                self._lease.release()
        finally:
            self._lease = None
            with contextlib.suppress(*DRIVER_ERRORS):
                self._con.close()
