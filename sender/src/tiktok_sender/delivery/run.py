"""A `sender push` run: stream pending rows, send batches concurrently, record every outcome.

Threads: the event loop runs payload building and HTTP; every warehouse call goes through one
dedicated thread, so the warehouse is only ever touched from that thread. Memory does not grow
with the outbox: it is bounded by the read chunk, one open batch per event source, a queue of
`2 x concurrency` batches, the receipts waiting for the warehouse (`ReceiptSink`) and the
warehouse connection's own limit; the run keeps counters, never per-event state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa

from tiktok_sender import __version__
from tiktok_sender.api.batch import Batch, Batcher, body
from tiktok_sender.api.client import ApiClient
from tiktok_sender.api.payload import (
    Prepared,
    Skipped,
    invalid_reason,
    prepare,
    skipped_row,
    test_event_id_suffix,
)
from tiktok_sender.delivery.run_state import Clock, NoProgress, Progress, RunResult
from tiktok_sender.delivery.sink import ReceiptSink, WarehouseThread
from tiktok_sender.delivery.workers import Workers
from tiktok_sender.errors import EXIT_OK, ApiConfigError, AuthError, ConfigError, WarehouseError
from tiktok_sender.settings import PushSettings, redact, safe_url, unusual_api_host
from tiktok_sender.tables.receipts import (
    DELIVERED,
    EXPIRED,
    REJECTED,
    Outcome,
    ReceiptFactory,
    truncate,
)
from tiktok_sender.warehouse import Warehouse
from tiktok_sender.warehouse.pending import PendingQuery

log = logging.getLogger("tiktok_sender")

RECEIPT_LINGER_S = 0.05  # longest wait for receipts to gather before a write
LEASE_CHECK_S = 5.0  # how often a run confirms it still holds the delivery lease


class Delivery:
    """One run of `sender push` (or `--dry-run`)."""

    def __init__(
        self,
        settings: PushSettings,
        open_warehouse: Callable[[threading.Event], Warehouse],
        *,
        progress: Progress | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._open_warehouse = open_warehouse
        self.progress = progress or NoProgress()
        self._clock = clock or Clock.starting_at(settings.clock_start)
        if settings.clock_start is not None:
            log.warning("replay: the run's clock starts at %s UTC (--clock-start), not now",
                        settings.clock_start.isoformat(sep=" "))
        self.result = RunResult(
            run_id=uuid.uuid4().hex,
            dry_run=settings.dry_run,
            api_url=safe_url(settings.api_url),
            test_event_code=settings.test_event_code,
            started_at=self._clock.utcnow(),
            max_failure_rate=settings.max_failure_rate,
            clock=self._clock,
        )
        self.receipts = ReceiptFactory(self.result.run_id, settings.test_event_code)
        # Set by the first SIGINT/SIGTERM once sending started: no new request goes out, the
        # requests in flight finish and are recorded. A second signal cancels them.
        self._stopping = asyncio.Event()
        self._sending = False
        self._id_suffix = test_event_id_suffix(settings.test_event_code)
        self._abort_open = threading.Event()  # a signal while waiting for the delivery lease
        self._workers = Workers(settings, self.result, self.receipts, self.progress, self._stopping,
                                self._clock)
        self._lease_lost: WarehouseError | None = None
        self._query: PendingQuery | None = None
        self._handed_out_all = False  # the reader reached the end of the pending rows

    @property
    def terminal_statuses(self) -> tuple[str, ...]:
        return (DELIVERED, EXPIRED) if self.settings.retry_rejected else (DELIVERED, REJECTED, EXPIRED)

    def run(self) -> RunResult:
        """Run to completion; fatal API answers end up in `result.error`, setup errors raise.

        The first SIGINT or SIGTERM stops the run cleanly: no new request is sent, the requests
        in flight finish (within the read timeout) and get their receipts, every receipt is
        committed, and the run row says `interrupted`. A second signal (or a first one before
        sending started) stops at once: requests still in flight get a `failed` receipt saying
        their outcome is unknown, and their events stay pending for the next run."""
        try:
            return asyncio.run(self._run_with_signals())
        except (asyncio.CancelledError, KeyboardInterrupt):
            # stopped before sending started (or a second signal): nothing is in flight
            result = self.result
            if result.outcome != "interrupted":
                result.outcome, result.message = "interrupted", "interrupted before sending started"
            result.finished_at = result.finished_at or self._clock.utcnow()
            return result

    async def _run_with_signals(self) -> RunResult:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signum: int) -> None:
            if self._sending and not self._stopping.is_set():
                log.warning(
                    "%s: finishing the requests in flight, then stopping "
                    "(send the signal again to stop at once)", signal.Signals(signum).name,
                )
                self._stopping.set()
            else:
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await self._run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def _run(self) -> RunResult:
        db = WarehouseThread()
        try:
            try:
                warehouse = await db.call(self._open_warehouse, self._abort_open)
            except asyncio.CancelledError:
                self._abort_open.set()  # stop waiting for the lease
                raise
            try:
                await self._run_with(db, warehouse)
            finally:
                await db.call(warehouse.close)
        finally:
            db.shutdown()
        return self.result

    async def _run_with(self, db: WarehouseThread, warehouse: Warehouse) -> None:
        s, result = self.settings, self.result
        await db.call(warehouse.check_outbox)
        await db.call(warehouse.ensure_delivery_tables)
        self._query = await db.call(
            lambda: warehouse.plan_pending(self.terminal_statuses, s.limit, s.shard,
                                           rescan=s.rescan))
        result.counts.pending = await db.call(warehouse.count_pending, self._query)
        if not s.dry_run:
            await db.call(warehouse.expect_receipts, result.counts.pending)
        crashed = await db.call(warehouse.mark_crashed_runs, result.run_id, s.shard)
        if crashed:
            log.warning("marked %d run(s) left running by a killed process as crashed", crashed)
        null_keys = await db.call(warehouse.unreceipted_null_key_rows, s.shard)
        result.counts.pending += null_keys.num_rows
        await db.call(warehouse.insert_run, self._run_row(initial=True))
        # At most 2 x concurrency x batch size events sent without a durable receipt: the
        # resend bound after a crash (README, "What a crash or a stop costs").
        sink = ReceiptSink(db, warehouse, flush_rows=s.concurrency * s.batch_size // 2,
                           linger_s=RECEIPT_LINGER_S,
                           unacknowledged=2 * s.concurrency * s.batch_size)
        self.progress.start(result.counts.pending)
        self._record_null_keys(null_keys, sink)
        host = unusual_api_host(s.api_url)
        if host is not None and not s.dry_run:
            log.warning("the API URL points at %s, which is neither TikTok's API host nor a "
                        "loopback address: the events and the access token go there", host)
        log.info(
            "run %s: %d pending event(s)%s%s", result.run_id, result.counts.pending,
            f" in shard {s.shard}" if s.shard is not None else "",
            " (dry run)" if s.dry_run else "",
        )
        try:
            if s.dump is not None:
                self._workers.dump = _open_dump(s.dump)
            self._sending = True
            if s.dry_run:
                await self._produce(db, warehouse, sink, self._dry_send)
            else:
                assert s.token is not None
                async with ApiClient(
                    s.api_url,
                    s.token,
                    concurrency=s.concurrency,
                    connect_timeout=s.connect_timeout,
                    read_timeout=s.read_timeout,
                    proxy=s.proxy,
                    use_env_proxy=s.use_env_proxy,
                ) as client:
                    watcher = asyncio.create_task(self._watch_lease(db, warehouse))
                    try:
                        await self._workers.send_all(
                            lambda emit: self._produce(db, warehouse, sink, emit), sink, client)
                    finally:
                        watcher.cancel()
                        await asyncio.gather(watcher, return_exceptions=True)
            if self._lease_lost is not None:
                raise self._lease_lost
            if self._workers.fatal is not None:
                raise self._workers.fatal
            stopped = self._workers.source_error()
            if stopped is not None:
                raise stopped
            if self._stopping.is_set():
                result.outcome, result.message = "interrupted", (
                    "stopped by a signal; requests in flight finished, unsent events stay pending"
                )
            else:
                result.outcome = "success" if result.exit_code == EXIT_OK else "failures"
        except AuthError as exc:
            result.outcome, result.error = "auth_error", exc
        except ApiConfigError as exc:
            result.outcome, result.error = "config_error", exc
        except (asyncio.CancelledError, KeyboardInterrupt):
            result.outcome, result.message = "interrupted", "interrupted by a signal"
            raise
        except BaseException as exc:
            result.outcome = "error"
            result.message = truncate(redact(str(exc), s.token))
            raise
        finally:
            if self._workers.dump is not None:
                self._workers.dump.close()
            self.progress.finish()
            try:
                await self._finish(db, warehouse, sink)
            except WarehouseError:
                if self._lease_lost is None:
                    raise
                # The session that held the lease is gone: the receipts still waiting cannot be
                # written, and their events are sent again (same ids) by the next run. The lease
                # error is the one to report.
                log.error("the last receipts and the run row could not be written: the "
                          "connection that held the lease is gone")

    async def _finish(self, db: WarehouseThread, warehouse: Warehouse, sink: ReceiptSink) -> None:
        """Write the receipts still waiting, then the run row's final state."""
        result = self.result
        try:
            await sink.drain()
        finally:
            if result.error is not None:
                result.message = truncate(redact(str(result.error), self.settings.token))
            result.finished_at = self._clock.utcnow()
            await db.call(warehouse.update_run, result.run_id, self._run_row(initial=False))

    async def _watch_lease(self, db: WarehouseThread, warehouse: Warehouse) -> None:
        """Check every LEASE_CHECK_S that the delivery lease is still held (PostgreSQL: the
        session's advisory lock); the moment it is not, stop sending: another run may now take
        the same events."""
        while True:
            await asyncio.sleep(LEASE_CHECK_S)
            try:
                await db.call(warehouse.check_lease)
            except WarehouseError as exc:
                self._lease_lost = exc
                log.error("%s: no new request is sent", exc)
                self._stopping.set()
                return

    def _run_row(self, *, initial: bool) -> dict[str, Any]:
        r, c = self.result, self.result.counts
        row: dict[str, Any] = {
            "finished_at": r.finished_at,
            "outcome": r.outcome,
            **asdict(c),
            "message": r.message,
        }
        if initial:
            row = {
                "run_id": r.run_id,
                "started_at": r.started_at,
                "settings": orjson.dumps(self.settings.to_record(), default=str).decode(),
                "sender_version": __version__,
                "api_url": r.api_url,
                "test_event_code": r.test_event_code,
                "dry_run": r.dry_run,
                "shard": str(self.settings.shard) if self.settings.shard is not None else None,
                **row,
            }
        else:
            row["outbox_seq_through"] = self._read_through()
        return row

    def _read_through(self) -> int | None:
        """The outbox_seq this run read through (`warehouse.pending`): the window's top when the
        run handed out every pending event and each got a receipt of this run (it finished with
        every event sent or decided, none held, no --limit, in production); else None."""
        s, r, window = self.settings, self.result, self._query and self._query.window
        complete = (
            window is not None and self._handed_out_all and r.outcome in ("success", "failures")
            and r.counts.held == 0 and s.limit is None and not s.dry_run
            and s.test_event_code is None
        )
        return window.through_seq if complete and window is not None else None

    # -- reading -----------------------------------------------------------------------------

    async def _produce(
        self,
        db: WarehouseThread,
        warehouse: Warehouse,
        sink: ReceiptSink,
        emit: Callable[[Batch], Any],
    ) -> None:
        s = self.settings
        expire_before = int(self._clock.time() - s.max_age_days * 86400)
        assert self._query is not None
        reader = await db.call(warehouse.open_pending, self._query, s.read_chunk_rows)
        batcher = Batcher(s.batch_size)
        upcoming: asyncio.Future[pa.RecordBatch | None] = asyncio.get_running_loop().create_future()
        upcoming.set_result(None)
        try:
            upcoming = asyncio.ensure_future(db.call(reader.next))
            while (chunk := await upcoming) is not None and not self._stopping.is_set():
                upcoming = asyncio.ensure_future(db.call(reader.next))  # read ahead meanwhile
                prepared = prepare(chunk, expire_before=expire_before, id_suffix=self._id_suffix)
                self._record_skipped(prepared, sink)
                for batch in batcher.add(prepared.groups):
                    await emit(batch)
            for batch in batcher.flush():
                if self._stopping.is_set():
                    break
                await emit(batch)
            self._handed_out_all = chunk is None and not self._stopping.is_set()
        finally:
            if not upcoming.done():
                upcoming.cancel()
            await asyncio.gather(upcoming, return_exceptions=True)
            await db.call(reader.close)

    def _record_skipped(self, prepared: Prepared, sink: ReceiptSink) -> None:
        counts = self.result.counts
        for rows, status in ((prepared.expired, EXPIRED), (prepared.invalid, REJECTED)):
            if not rows:
                continue
            if status == EXPIRED:
                counts.expired += len(rows)
            else:
                counts.rejected += len(rows)
            for row in rows:
                self.result.problems[(status, None, row.reason)] += 1
            if not self.settings.dry_run:
                for table in self._skipped_receipts(rows, status):
                    sink.add(table)
            self.progress.advance(len(rows))

    def _record_null_keys(self, table: pa.Table, sink: ReceiptSink) -> None:
        """Outbox rows with a null key: no receipt can settle them by key, so each gets one
        `rejected` receipt, recognised by its `row_fingerprint`, and is not handed out again."""
        if table.num_rows == 0:
            return
        rows = []
        for row in table.to_pylist():
            reason = invalid_reason(row) or "a key column is missing"
            rows.append(skipped_row(row, reason)._replace(row_fingerprint=row["row_fingerprint"]))
        self._record_skipped(Prepared(invalid=rows), sink)

    def _skipped_receipts(self, rows: list[Skipped], status: str) -> list[pa.Table]:
        by_group: dict[tuple[str, str, str], list[Skipped]] = {}
        for row in rows:
            by_group.setdefault((row.event_source, row.event_source_id, row.reason), []).append(row)
        return [
            self.receipts.build(
                event_source=source,
                event_source_id=source_id,
                event_ids=[r.event_id for r in group],
                events=[r.event for r in group],
                event_times=[r.event_time for r in group],
                cells=[r.experiment_cell for r in group],
                payload_sha256=[None] * len(group),
                statuses=status,
                attempt=None,
                outcome=Outcome(api_message=f"not sent: {reason}"),
                row_fingerprints=[r.row_fingerprint for r in group]
                if any(r.row_fingerprint for r in group) else None,
            )
            for (source, source_id, reason), group in by_group.items()
        ]

    async def _dry_send(self, batch: Batch) -> None:
        counts = self.result.counts
        counts.requests += 1
        counts.sent += len(batch)
        self.result.groups[batch.key] += len(batch)
        if self._workers.dump is not None:
            self._workers.dump.write(body(batch, self.settings.test_event_code) + b"\n")
        self.progress.advance(len(batch))

def _open_dump(path: Path) -> IO[bytes]:
    """The dump file, readable by its owner only: it holds ips, user agents and click ids."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    except OSError as exc:
        raise ConfigError(f"cannot write the dump file {path}: {exc.strerror}") from None
    return os.fdopen(fd, "wb")
