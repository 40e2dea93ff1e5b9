"""DuckDB warehouse: the file dbt builds into. The outbox is streamed as Arrow batches from a
cursor of its own, receipts are inserted from Arrow tables, and the delivery lease is the
exclusive lock DuckDB takes on the file for a read-write connection.

DuckDB's own Python API, not its ADBC driver (`adbc_driver_duckdb`, which the duckdb package
ships): that API is Arrow-native already (`to_arrow_reader` streams record batches, an Arrow
table is registered and inserted without a copy), and as fast as the driver (a million rows read
in 0.09 s against 0.12 s, appended in 0.43 s against 0.38 s). The driver opens a database
instance of its own, outside the duckdb module's instance cache: a process that also opens the
file through the module (dbt-duckdb, the audit's reads, a test) then holds two instances of one
file that do not see each other's writes, which the file lock cannot prevent within one process.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tiktok_sender.errors import WarehouseError
from tiktok_sender.profiles import WarehouseTarget
from tiktok_sender.settings import DEFAULT_DUCKDB_MEMORY_LIMIT, memory_bytes
from tiktok_sender.shard import Shard
from tiktok_sender.warehouse import PendingReader
from tiktok_sender.warehouse.base import SqlWarehouse
from tiktok_sender.warehouse.pending import PendingQuery
from tiktok_sender.warehouse.support import LeaseHeld, first_line, poll_lease, wrap_errors

log = logging.getLogger("tiktok_sender")

# The pending read holds hash tables of receipt keys: of the terminal receipts it leaves out (every
# one when it reads the whole delivery history: no outbox_seq mark yet, --rescan, --retry-rejected;
# those of recent events with a mark), and with a mark of the open receipts whose rows it reads
# again (`pending`). Over MANY_RECEIPT_KEYS keys, the run's memory limit is raised to
# DUCKDB_MANY_KEYS_MEMORY_LIMIT. The join spills the outbox rows it probes with, so what 64 MB
# holds shrinks as the read widens: reading 17 columns (before the app ids, the other match keys
# and contents) it spilled and succeeded up to 4.75 million keys; reading 34 it succeeds at 850,000
# keys (4 runs of 4), sometimes fails at a million, always at 1.3 million (exit 4, "Out of Memory").
# Hence half a million, with room for a wider contract (test_large_history runs at the threshold
# without the raise, and over a million with it). The raise costs RSS (a push of 10,000 events
# over a million recent receipts peaked at 413 MB with it, 300 MB without).
DUCKDB_MANY_KEYS_MEMORY_LIMIT = "1GB"
MANY_RECEIPT_KEYS = 500_000
# The read of the outbox stays open while the run commits its receipts, so DuckDB cannot
# checkpoint them and holds them in memory: at 64 MB a push of 10M pending events failed to commit
# after 4.3 million receipts (about 14 bytes each). A run of more than MANY_PENDING_EVENTS events
# gets RECEIPT_BYTES per event on top of the default limit.
MANY_PENDING_EVENTS = 2_000_000
RECEIPT_BYTES = 32
# `--limit` reads the pending rows oldest first: DuckDB's external sort spills to disk, but needs
# more working memory than the streaming read (at 64 MB it fails on a million wide rows). A lower
# --duckdb-memory-limit is raised to this for such a run.
DUCKDB_SORT_MEMORY_LIMIT = "128MB"


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
    """The DuckDB file dbt builds into; the tables are where dbt has them (`relations`), in the
    file's catalog."""

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
        self.target = target

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
            # dbt-duckdb's `database` of a relation is the catalog of the file (named after it)
            row = self._con.execute("select current_database()").fetchone()
            catalog = str(row[0]) if row else ""
        except duckdb.Error as exc:
            self._con.close()
            raise WarehouseError(f"cannot configure the warehouse: {first_line(exc)}") from None
        try:
            self._init_names(target, database=catalog)
        except BaseException:
            self._con.close()
            raise

    def location(self) -> str:
        return str(self.target.path)

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = self._con.execute(sql, list(params))
        names = [d[0] for d in cursor.description or []]
        return names, cursor.fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql, list(params))

    @wrap_errors("planning the pending read")
    def plan_pending(
        self, terminal: Sequence[str], limit: int | None, shard: Shard | None = None,
        *, rescan: bool = False,
    ) -> PendingQuery:
        """SqlWarehouse.plan_pending; a read that matches keys against more than
        MANY_RECEIPT_KEYS receipts gets a memory limit of at least DUCKDB_MANY_KEYS_MEMORY_LIMIT."""
        query = super().plan_pending(terminal, limit, shard, rescan=rescan)
        size = DUCKDB_MANY_KEYS_MEMORY_LIMIT
        if (query.terminal and memory_bytes(self._memory_limit) < memory_bytes(size)
                and self.column_types(self.relations.receipts) is not None):
            window = query.window
            keys = 0
            for terminal_keys in (True, False) if window and not window.whole_history else (True,):
                sql, params = self._receipts_sql(query, "count(*)", terminal=terminal_keys)
                keys += int(self.query(sql, params)[1][0][0])
            if keys > MANY_RECEIPT_KEYS:
                self._raise_memory_limit(size, f"this run's pending read matches keys against {keys} receipts")
        return query

    @wrap_errors("preparing for the receipts")
    def expect_receipts(self, events: int) -> None:
        """Over MANY_PENDING_EVENTS events, a memory limit of at least the default plus
        RECEIPT_BYTES per event for the receipts the run commits while its read is open."""
        if events > MANY_PENDING_EVENTS:
            size = f"{(memory_bytes(DEFAULT_DUCKDB_MEMORY_LIMIT) + events * RECEIPT_BYTES) // 2**20}MiB"
            self._raise_memory_limit(size, f"the receipts of {events} pending events")

    def _raise_memory_limit(self, size: str, reason: str | None = None) -> None:
        """DuckDB's memory limit for the rest of the run: at least `size` (logged with `reason`
        when given and it is raised)."""
        if memory_bytes(self._memory_limit) < memory_bytes(size):
            if reason is not None:
                log.info("DuckDB's memory limit is raised from %s to %s for %s", self._memory_limit,
                         size, reason)
            self._con.execute(f"set memory_limit = '{size}'")
            self._memory_limit = size

    @wrap_errors("reading the outbox")
    def open_pending(self, query: PendingQuery, chunk_rows: int) -> PendingReader:
        sql, params = self._pending_sql(query)
        if query.limit is not None:
            self._raise_memory_limit(DUCKDB_SORT_MEMORY_LIMIT)
        cursor = self._con.cursor()  # its own connection: receipts are written meanwhile
        try:
            result = cursor.execute(sql, params)
            # `to_arrow_reader` is the newer name of `fetch_record_batch` (deprecated in 1.5)
            stream = getattr(result, "to_arrow_reader", None) or result.fetch_record_batch
            reader = stream(chunk_rows)
        except duckdb.Error:
            cursor.close()
            raise
        return _DuckDBPendingReader(cursor, reader, query.limit)

    @wrap_errors("writing receipts")
    def append_receipts(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._con.register("_receipts_batch", table)
        try:
            self._con.execute(f"insert into {self.receipts} by name select * from _receipts_batch")
        finally:
            self._con.unregister("_receipts_batch")

    @wrap_errors("closing the warehouse")
    def close(self) -> None:
        self._con.close()
