"""Spark through Spark Connect: the outbox read and receipts appended as Arrow, a lease by rows.

The sender is a Spark Connect client (pyspark's) of the server the `spark` target names
(`spark.remote` of its `server_side_parameters`, else SPARK_REMOTE): the same server dbt-spark's
session method builds on, a cluster's or the local one of scripts/spark_server.py. Each
`SparkWarehouse` opens a session of its own, with double-quoted identifiers (ANSI SQL, as the
shared SQL of `base` writes them) and times in UTC.

- Pending rows: the pending query of `base`, read as Arrow (`DataFrame.toArrow`) in buckets of
  event ids (`pmod(xxhash64(event_id), n)`) of about READ_BUCKET_ROWS rows each, so the client
  holds one bucket at a time, then handed out `chunk_rows` at a time. With `--limit` the query is
  ordered and limited, and read at once.
- Receipts: appended from Arrow (`createDataFrame` of a slice, `insertInto` the table by column
  position, the table's order) in slices of at most APPEND_SLICE_ROWS rows. Each slice is a
  commit of its own: a crash between two slices leaves the earlier ones, as a crash between two
  appends does elsewhere.
- Runs: parquet tables cannot UPDATE, so the run row's updates (and `mark_crashed_runs`) rewrite
  the runs table whole, from the rows read into the client (one row per run: small). A crash in
  the middle of that rewrite can lose the runs table's history (never a receipt).
- The delivery tables are parquet tables (`using parquet`), their strings `string`.

The lease (Spark has no lock to take): claim rows in `tiktok_delivery_leases` next to the runs
table (`claims.ClaimLease`). The warehouse thread renews them: an append or read that keeps it
busy for longer than the lease's TTL would let the claim lapse (the slices are bounded so that
none does). A claim whose write fails (two Spark jobs committing into one table's directory at
once can trip over each other) counts as contention and is tried again. The rule is only as good
as the visibility of a committed append to the next read, which Spark's file commit gives on one
metastore. Releasing, the holder rewrites the table down to the live claims of others
(`sweep_claims`): parquet tables cannot delete rows.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import pyarrow as pa

from tiktok_sender.errors import WarehouseError
from tiktok_sender.profiles import WarehouseTarget, spark_remote
from tiktok_sender.relations import Relation
from tiktok_sender.shard import Shard
from tiktok_sender.tables.outbox import OUTBOX_SCHEMA
from tiktok_sender.tables.receipts import CRASHED_MESSAGE, RUN_COLUMNS, RUN_CRASHED, RUN_RUNNING
from tiktok_sender.warehouse import PendingReader
from tiktok_sender.warehouse.base import Dialect, SqlWarehouse
from tiktok_sender.warehouse.claims import LEASE_SCHEMA, LEASE_TABLE, ClaimLease, take_lease
from tiktok_sender.warehouse.pending import PendingQuery
from tiktok_sender.warehouse.support import first_line, wrap_errors

# pyspark warns on stderr when its retries run out; the sender says so in its own error line
warnings.filterwarnings("ignore", message=r"\[RETRIES_EXCEEDED\]")

log = logging.getLogger("tiktok_sender")

READ_BUCKET_ROWS = 100_000
APPEND_SLICE_ROWS = 50_000
# Spark Connect's own retries of an unavailable server, bounded to about 15 s (pyspark's default
# waits up to ten minutes before a run could say that Spark is not there).
CONNECT_RETRY = {"max_retries": 5, "initial_backoff": 250, "backoff_multiplier": 2.0, "max_backoff": 4000}


def _spark_errors() -> tuple[type[BaseException], ...]:
    from pyspark.errors import PySparkException

    return (PySparkException,)


class SparkDialect(Dialect):
    param = "?"
    limit_in_sql = True

    def replace_all(self, text: str, pattern: str, replacement: str) -> str:
        return f"regexp_replace({text}, {pattern}, {replacement})"  # every match by default

    def column_type(self, sql_type: str) -> str:
        return {"varchar": "string", "double precision": "double"}.get(sql_type, sql_type)

    table_options = " using parquet"

    def key_filter(self, keys: str, *, keep: bool) -> tuple[str, str]:
        join = (
            f" left {'semi' if keep else 'anti'} join ({keys}) k"
            " on k.event_source_id = o.event_source_id and k.event = o.event"
            " and k.event_id = o.event_id"
        )
        return join, ""

    def shard_of(self, event_id: str, count: str) -> str:
        return (f"pmod(cast(conv(substr(sha2(coalesce({event_id}, ''), 256), 1, 8), 16, 10)"
                f" as bigint), {count})")


def spark_name(relation: Relation) -> str:
    """A relation as the DataFrame API names it (backticks, not SQL's double quotes)."""
    return f"`{relation.schema}`.`{relation.name}`"


class _BucketReader:
    """The pending rows, one bucket query at a time, handed out `chunk_rows` at a time."""

    def __init__(self, fetch: Callable[[int], pa.Table], buckets: int, chunk_rows: int,
                 describe: Callable[[BaseException], str], errors: tuple[type[BaseException], ...]) -> None:
        self._fetch = fetch
        self._left = list(range(buckets))
        self._chunk_rows = chunk_rows
        self._describe = describe
        self._errors = errors
        self._batches: list[pa.RecordBatch] = []

    def next(self) -> pa.RecordBatch | None:
        while not self._batches and self._left:
            try:
                table = self._fetch(self._left.pop(0))
            except self._errors as exc:
                raise WarehouseError(f"reading the outbox failed: {self._describe(exc)}") from None
            table = table.rename_columns(OUTBOX_SCHEMA.names).cast(OUTBOX_SCHEMA)
            self._batches = table.to_batches(max_chunksize=self._chunk_rows)
        return self._batches.pop(0) if self._batches else None

    def close(self) -> None:
        self._batches = []
        self._left = []


class SparkWarehouse(SqlWarehouse):
    """The Spark Connect server of a `spark` target; tables where dbt has them (`relations`)."""

    dialect: ClassVar[Dialect] = SparkDialect()

    def __init__(
        self,
        target: WarehouseTarget,
        *,
        read_only: bool = False,
        lock_timeout: float = 0.0,
        abort: threading.Event | None = None,
    ) -> None:
        from pyspark.sql import SparkSession
        from pyspark.sql.connect.client.retries import DefaultPolicy

        self.driver_errors = _spark_errors()
        self.target = target
        url = spark_remote(target)
        try:
            self._session = SparkSession.builder.remote(url).create()
            self._session.client.set_retry_policies([DefaultPolicy(**CONNECT_RETRY)])
            self._session.conf.set("spark.sql.ansi.enabled", "true")
            self._session.conf.set("spark.sql.ansi.doubleQuotedIdentifiers", "true")
            self._session.conf.set("spark.sql.session.timeZone", "UTC")
        except self.driver_errors as exc:
            reason = first_line(exc)
            if reason.startswith("<") or "RETRIES_EXCEEDED" in reason:  # gRPC's repr of an unanswered call
                reason = "no Spark Connect server answered"
            raise WarehouseError(f"cannot reach Spark at {self.location()}: {reason}") from None
        self._lease: ClaimLease | None = None
        try:
            self._init_names(target, database="")  # dbt-spark's relations have no database
            if not read_only:
                self._lease = take_lease(self, Relation(self.relations.runs.schema, LEASE_TABLE),
                                         timeout=lock_timeout, abort=abort,
                                         hint="another `sender push` is running against this Spark")
        except BaseException:
            self._session.stop()
            raise

    def location(self) -> str:
        return str(self.target.options.get("remote"))  # a token in it shows as ***

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        frame = self._session.sql(sql, args=list(params) or None)
        return list(frame.columns), [tuple(row) for row in frame.collect()]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A query's rows as dicts, read through Arrow, timestamps as naive UTC datetimes (as the
        sender writes them; `collect()` would give them in this machine's local time)."""
        table = self._session.sql(sql, args=list(params) or None).toArrow()
        return [{k: v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v
                 for k, v in row.items()} for row in table.to_pylist()]

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._session.sql(sql, args=list(params) or None).collect()

    def column_types(self, relation: Relation) -> dict[str, str] | None:
        catalog, name = self._session.catalog, spark_name(relation)
        if not catalog.databaseExists(relation.schema) or not catalog.tableExists(name):
            return None
        return {c.name: c.dataType for c in catalog.listColumns(name)}

    def table_names(self, schema: str) -> set[str]:
        catalog = self._session.catalog
        return {t.name for t in catalog.listTables(schema)} if catalog.databaseExists(schema) else set()

    @wrap_errors("reading the outbox")
    def open_pending(self, query: PendingQuery, chunk_rows: int) -> PendingReader:
        sql, params = self._pending_sql(query)
        if query.limit is not None:
            buckets = 1
        else:
            buckets = max(1, math.ceil(self.count_pending(replace(query, limit=None)) / READ_BUCKET_ROWS))

        def fetch(bucket: int) -> pa.Table:
            if buckets == 1:
                return self._session.sql(sql, args=params or None).toArrow()
            return self._session.sql(
                f"select * from ({sql}) pending where pmod(xxhash64(pending.event_id), {buckets}) = {bucket}",
                args=params or None).toArrow()

        return _BucketReader(fetch, buckets, chunk_rows, self.error_text, self.driver_errors)

    def _append(self, relation: Relation, table: pa.Table, *, overwrite: bool = False) -> None:
        """`table` into `relation` by the table's column order, APPEND_SLICE_ROWS rows a commit;
        `overwrite` replaces the table's rows with `table` (one commit)."""
        columns = list(self.column_types(relation) or {})
        table = table.select([c for c in columns if c in table.column_names])
        for c in columns:  # columns this sender does not write (a newer table) stay null
            if c not in table.column_names:
                table = table.append_column(c, pa.nulls(table.num_rows))
        if overwrite and not table.num_rows:  # Spark cannot make a DataFrame of no Arrow rows
            self._execute(f"truncate table {relation.sql}")
            return
        if overwrite:
            self._session.createDataFrame(table).write.insertInto(spark_name(relation), overwrite=True)
            return
        for batch in table.to_batches(max_chunksize=APPEND_SLICE_ROWS):
            frame = self._session.createDataFrame(pa.Table.from_batches([batch]))
            frame.write.insertInto(spark_name(relation))

    @wrap_errors("appending receipts")
    def append_receipts(self, table: pa.Table) -> None:
        if table.num_rows:
            self._append(self.relations.receipts, table)

    @wrap_errors("writing the run row")
    def insert_run(self, row: Mapping[str, Any]) -> None:
        self._append(self.relations.runs, self._run_table([dict(row)]))

    def _run_table(self, rows: list[dict[str, Any]]) -> pa.Table:
        schema = pa.schema([pa.field(c.name, c.arrow) for c in RUN_COLUMNS])
        return pa.Table.from_pylist([{c.name: r.get(c.name) for c in RUN_COLUMNS} for r in rows],
                                    schema=schema)

    def _rewrite_runs(self, change: Callable[[dict[str, Any]], bool]) -> list[str]:
        """Apply `change` to every run row (it returns whether it changed the row) and, if any
        did, write the runs table back whole; the run_ids changed."""
        runs = self.rows(f"select * from {self.runs}")
        changed = [str(r["run_id"]) for r in runs if change(r)]
        if changed:
            self._append(self.relations.runs, self._run_table(runs), overwrite=True)
        return changed

    @wrap_errors("updating the run row")
    def update_run(self, run_id: str, row: Mapping[str, Any]) -> None:
        def change(run: dict[str, Any]) -> bool:
            if run["run_id"] != run_id:
                return False
            run.update(row)
            return True

        self._rewrite_runs(change)

    @wrap_errors("marking crashed runs")
    def mark_crashed_runs(self, run_id: str, shard: Shard | None) -> int:
        """`SqlWarehouse.mark_crashed_runs`: the lease is one for every shard, so every other
        `running` row is of a run that cannot be alive."""
        if self.column_types(self.relations.runs) is None:
            return 0
        message = CRASHED_MESSAGE.format(run_id=run_id)

        def change(run: dict[str, Any]) -> bool:
            if run["outcome"] != RUN_RUNNING or run["run_id"] == run_id:
                return False
            run.update(outcome=RUN_CRASHED, message=message)
            return True

        return len(self._rewrite_runs(change))

    def sweep_claims(self, relation: Relation, holder: str) -> None:
        """Rewrite the lease table down to the live claims of holders other than `holder`, from
        the rows read into the client (a parquet table cannot delete rows)."""
        kept = self.rows(
            f"select * from (select *, row_number() over (partition by holder order by written_at desc)"
            f" as latest from {relation.sql}) where latest = 1 and expires_at > current_timestamp()"
            " and holder <> ?", [holder])
        self._append(relation, pa.Table.from_pylist([{k: row[k] for k in LEASE_SCHEMA.names} for row in kept],
                                                    schema=LEASE_SCHEMA), overwrite=True)

    def check_lease(self) -> None:
        if self._lease is not None:
            self._lease.check()

    def close(self) -> None:
        try:
            if self._lease is not None:
                self._lease.release()
        finally:
            self._lease = None
            self._session.stop()
