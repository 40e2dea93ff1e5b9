"""The receipt sink: bulk writes, a short linger to gather receipts, bounded memory."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pyarrow as pa

from tiktok_sender.delivery.sink import ReceiptSink, WarehouseThread


class SlowWarehouse:
    """Records each append; each one blocks until `release` is set (when given)."""

    def __init__(self, release: threading.Event | None = None) -> None:
        self.writes: list[int] = []
        self.release = release

    def append_receipts(self, table: pa.Table) -> None:
        if self.release is not None:
            self.release.wait(5)
        self.writes.append(table.num_rows)


def rows(n: int) -> pa.Table:
    return pa.table({"event_id": [f"e{i}" for i in range(n)]})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_receipts_gather_until_the_threshold_then_go_in_one_insert() -> None:
    warehouse, db = SlowWarehouse(), WarehouseThread()

    async def scenario() -> None:
        sink = ReceiptSink(db, warehouse, flush_rows=10, linger_s=5.0)  # type: ignore[arg-type]
        for _ in range(3):
            sink.add(rows(3))
            await asyncio.sleep(0.01)
        assert warehouse.writes == []  # 9 < 10 rows: still gathering
        sink.add(rows(3))
        await asyncio.wait_for(sink.drain(), 2)
        assert warehouse.writes == [12] and sink.rows_written == 12

    try:
        run(scenario())
    finally:
        db.shutdown()


def test_drain_writes_at_once_without_lingering() -> None:
    warehouse, db = SlowWarehouse(), WarehouseThread()

    async def scenario() -> float:
        sink = ReceiptSink(db, warehouse, flush_rows=1000, linger_s=30.0)  # type: ignore[arg-type]
        sink.add(rows(2))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await sink.drain()
        return loop.time() - started

    try:
        assert run(scenario()) < 2 and warehouse.writes == [2]
    finally:
        db.shutdown()


def test_room_blocks_senders_while_too_many_receipts_wait() -> None:
    release = threading.Event()
    warehouse, db = SlowWarehouse(release), WarehouseThread()

    async def scenario() -> None:
        sink = ReceiptSink(db, warehouse, max_rows=5)  # type: ignore[arg-type]
        sink.add(rows(6))
        waiter = asyncio.create_task(sink.room())
        await asyncio.sleep(0.1)
        assert not waiter.done()  # the write is stuck: senders wait
        release.set()
        await asyncio.wait_for(waiter, 2)
        await sink.drain()
        assert warehouse.writes == [6]

    try:
        run(scenario())
    finally:
        db.shutdown()


def test_reserve_bounds_the_events_sent_without_a_durable_receipt() -> None:
    """The crash bound: a request waits while the events sent but not yet recorded would pass
    `unacknowledged`; a written receipt table gives its events back."""
    release = threading.Event()
    warehouse, db = SlowWarehouse(release), WarehouseThread()

    async def scenario() -> None:
        sink = ReceiptSink(db, warehouse, unacknowledged=10)  # type: ignore[arg-type]
        await sink.reserve(6)  # sent: 6 without a receipt
        sink.add(rows(6), sent=6)  # their receipts wait for a stuck warehouse
        await sink.reserve(4)  # 10: still within the bound
        blocked = asyncio.create_task(sink.reserve(1))
        await asyncio.sleep(0.1)
        assert not blocked.done() and sink.peak_reserved == 10
        release.set()  # the write of the first 6 lands
        await asyncio.wait_for(blocked, 2)
        sink.release(4)  # a request that was never sent
        sink.add(rows(1), sent=1)
        await sink.drain()
        assert sink.peak_reserved == 10 and warehouse.writes == [6, 1]

    try:
        run(scenario())
    finally:
        db.shutdown()
