"""Where a run's receipts go: one warehouse thread, and a sink that appends receipts in bulk.

The sink also enforces the crash bound the README states: a request may only go out once its
events fit in `unacknowledged` (2 x concurrency x batch size), the events sent whose receipts are
not durable yet. After a SIGKILL, the next run resends at most that many events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pyarrow as pa

from tiktok_sender.warehouse import Warehouse

T = TypeVar("T")


class WarehouseThread:
    """Runs every warehouse call on one dedicated thread, awaited from the event loop."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


class ReceiptSink:
    """Appends receipt tables to the warehouse, in bulk and promptly.

    Tables that arrive during a write are written together by the next one, so there is one
    insert per request or fewer, never one per row. Each insert has a fixed cost (milliseconds
    in DuckDB, whatever its size), so a write also waits up to `linger_s` for `flush_rows`
    receipts to gather.

    Two bounds:
    - `reserve(n)` before a request: it waits while the events sent but not yet durable would
      exceed `unacknowledged`; `add(table, sent=n)` hands them back once that request's receipts
      are written. This is the resend bound after a crash.
    - `room()`: it waits while `max_rows` receipts wait for the warehouse, so a slow warehouse
      slows reading and sending instead of filling memory."""

    def __init__(
        self,
        db: WarehouseThread,
        warehouse: Warehouse,
        *,
        flush_rows: int = 1,
        linger_s: float = 0.0,
        max_rows: int = 50_000,
        unacknowledged: int | None = None,
    ) -> None:
        self._db = db
        self._warehouse = warehouse
        self._pending: list[tuple[pa.Table, int]] = []
        self._pending_rows = 0
        self._flush_rows = max(flush_rows, 1)
        self._linger_s = linger_s
        self._max_rows = max(max_rows, self._flush_rows)
        self._unacknowledged = unacknowledged
        self._reserved = 0  # events sent (or about to be) whose receipts are not durable
        self._released = asyncio.Event()
        self._gathered = asyncio.Event()
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self.rows_written = 0
        self.peak_reserved = 0

    async def reserve(self, events: int) -> None:
        """Wait until `events` more sent-but-unrecorded events stay within the bound."""
        limit = self._unacknowledged
        if limit is None:
            return
        while self._reserved and self._reserved + events > limit:
            self._released.clear()
            self._check_writer()
            await self._released.wait()
        self._reserved += events
        self.peak_reserved = max(self.peak_reserved, self._reserved)

    def release(self, events: int) -> None:
        """Give back a reservation whose request was never sent."""
        self._reserved -= events
        self._released.set()

    def add(self, table: pa.Table, *, sent: int = 0) -> None:
        """Queue `table` for the warehouse; `sent` reserved events are released once it is written."""
        self._check_writer()
        self._pending.append((table, sent))
        self._pending_rows += table.num_rows
        if self._pending_rows >= self._flush_rows:
            self._gathered.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write())

    def _check_writer(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # re-raise a failed write
            self._task = None

    async def room(self) -> None:
        """Wait while too many receipts wait for the warehouse."""
        while self._pending_rows >= self._max_rows and self._task is not None:
            await asyncio.shield(self._task)

    async def _write(self) -> None:
        try:
            await self._write_pending()
        finally:
            self._released.set()  # waiters look again (and see a failed write)

    async def _write_pending(self) -> None:
        while self._pending:
            if self._linger_s > 0 and self._pending_rows < self._flush_rows and not self._draining:
                try:
                    await asyncio.wait_for(self._gathered.wait(), self._linger_s)
                except TimeoutError:
                    pass
            self._gathered.clear()
            items, self._pending = self._pending, []
            tables = [t for t, _ in items]
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            try:
                await self._db.call(self._warehouse.append_receipts, table)
            finally:
                self._pending_rows -= table.num_rows
            self.rows_written += table.num_rows
            self.release(sum(sent for _, sent in items))

    async def drain(self) -> None:
        self._draining = True  # the last writes do not linger
        self._gathered.set()
        while self._task is not None:
            task = self._task
            await asyncio.shield(task)
            if self._task is task:
                self._task = None
        if self._pending:
            self._task = asyncio.get_running_loop().create_task(self._write())
            await self.drain()
