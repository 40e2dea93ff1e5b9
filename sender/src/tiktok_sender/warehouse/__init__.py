"""Warehouse access behind a small interface: the outbox read, receipts and runs written.

`open_warehouse` is the one place that picks an implementation, and imports it only then, so a
run loads the driver of its own engine and nothing else: DuckDB in `duckdb` (DuckDB's own Arrow
API), PostgreSQL in `postgres` (ADBC, through the shared mechanics of `adbc`), Spark in `spark`
(pyspark's Spark Connect client), Snowflake in `snowflake` (ADBC too). The SQL they run is
written once, in `base.SqlWarehouse`;
`history` holds the status and run-history queries, `support` the quoting, error wrapping and
lease waiting every engine uses. The modules import from this one, never the other way round
(but for that lazy import), so there is no cycle.

Every engine reads the pending rows as Arrow record batches of bounded size and appends receipts
as Arrow data: no Python object per cell on the hot path.

The delivery lease: a warehouse opened for writing holds it until `close()`, so two `sender push`
runs never select the same pending events. DuckDB's lease is the exclusive file lock of the
read-write connection; PostgreSQL's is a session advisory lock keyed on the delivery tables'
schema (and the shard: shards of one `--shard K/N` set run side by side). Either is released
when its holder dies, even on SIGKILL. Spark and Snowflake have no such lock: their lease is claim rows that
expire unless renewed (`claims.ClaimLease`), so a dead holder's lapses after a minute. Every lease is
waited for through `support.poll_lease`: up to `lock_timeout` seconds, then WarehouseBusyError.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from tiktok_sender.errors import ConfigError
from tiktok_sender.settings import DEFAULT_DUCKDB_MEMORY_LIMIT

if TYPE_CHECKING:
    import pyarrow as pa

    from tiktok_sender.profiles import WarehouseTarget
    from tiktok_sender.shard import Shard
    from tiktok_sender.warehouse.base import SqlWarehouse
    from tiktok_sender.warehouse.history import StatusReport
    from tiktok_sender.warehouse.pending import PendingQuery

__all__ = ["PendingReader", "Warehouse", "open_warehouse"]


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

    def check_lease(self) -> None: ...

    def mark_crashed_runs(self, run_id: str, shard: Shard | None) -> int: ...

    def plan_pending(
        self, terminal: Sequence[str], limit: int | None, shard: Shard | None = None,
        *, rescan: bool = False,
    ) -> PendingQuery: ...

    def count_pending(self, query: PendingQuery) -> int: ...

    def expect_receipts(self, events: int) -> None: ...

    def open_pending(self, query: PendingQuery, chunk_rows: int) -> PendingReader: ...

    def unreceipted_null_key_rows(self, shard: Shard | None = None) -> pa.Table: ...

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
        from tiktok_sender.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(target, read_only=read_only, lock_timeout=lock_timeout, abort=abort,
                               memory_limit=memory_limit)
    if target.type == "postgres":
        try:
            from tiktok_sender.warehouse.postgres import PostgresWarehouse
        except ModuleNotFoundError as exc:
            if exc.name not in ("adbc_driver_manager", "adbc_driver_postgresql"):
                raise
            raise ConfigError(
                "postgres targets need the ADBC PostgreSQL driver (`pip install "
                "'tiktok-outbox-sender[postgres]'`, or adbc-driver-postgresql)"
            ) from None

        return PostgresWarehouse(
            target, read_only=read_only, lock_timeout=lock_timeout, abort=abort, shard=shard
        )
    if target.type == "spark":
        try:
            from tiktok_sender.warehouse.spark import SparkWarehouse
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith(("pyspark", "grpc", "pandas")):
                raise
            raise ConfigError(
                "spark targets need pyspark's Spark Connect client (`pip install "
                "'tiktok-outbox-sender[spark]'`, or pyspark[connect])"
            ) from None

        return SparkWarehouse(target, read_only=read_only, lock_timeout=lock_timeout, abort=abort)
    if target.type == "snowflake":
        try:
            from tiktok_sender.warehouse.snowflake import SnowflakeWarehouse
        except ModuleNotFoundError as exc:
            if exc.name not in ("adbc_driver_manager", "adbc_driver_snowflake"):
                raise
            raise ConfigError(
                "snowflake targets need the ADBC Snowflake driver (`pip install "
                "'tiktok-outbox-sender[snowflake]'`, or adbc-driver-snowflake)"
            ) from None

        return SnowflakeWarehouse(target, read_only=read_only, lock_timeout=lock_timeout,
                                  abort=abort)
    raise ConfigError(f"warehouse type '{target.type}' is not supported")
