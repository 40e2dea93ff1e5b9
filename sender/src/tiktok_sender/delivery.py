"""A `sender push` run: stream pending rows, send batches concurrently, record every outcome.

Threads: the event loop runs payload building and HTTP; every warehouse call goes through one
dedicated thread, so the warehouse is only ever touched from that thread. Memory does not grow
with the outbox: it is bounded by the read chunk, one open batch per event source, a queue of
`2 x concurrency` batches, the receipts waiting for the warehouse (`ReceiptSink`) and the
warehouse connection's own limit; the run keeps counters, never per-event state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson
import pyarrow as pa

from tiktok_sender import __version__
from tiktok_sender.classify import Classification, Verdict, classify
from tiktok_sender.client import ApiClient
from tiktok_sender.contract import (
    CODE_REQUEST_FREQUENCY_LIMITED,
    CODE_REQUEST_TOO_FREQUENT,
    CODE_TOO_MANY_REQUESTS_BL,
)
from tiktok_sender.errors import EXIT_OK, ApiConfigError, AuthError, ConfigError
from tiktok_sender.pacing import Pacer, backoff_delay, sleep_unless
from tiktok_sender.payload import Batch, Batcher, Prepared, Skipped, body, prepare
from tiktok_sender.receipts import (
    DELIVERED,
    EXPIRED,
    FAILED,
    REJECTED,
    Outcome,
    ReceiptFactory,
    truncate,
)
from tiktok_sender.run_state import NoProgress, Progress, RunResult, utcnow
from tiktok_sender.settings import PushSettings, redact, safe_url
from tiktok_sender.warehouse import Warehouse

log = logging.getLogger("tiktok_sender")

T = TypeVar("T")
THROTTLE_CODES = frozenset(
    {CODE_REQUEST_TOO_FREQUENT, CODE_REQUEST_FREQUENCY_LIMITED, CODE_TOO_MANY_REQUESTS_BL}
)
RECEIPT_LINGER_S = 0.05  # longest wait for receipts to gather before a write
IN_FLIGHT_MESSAGE = "interrupted while the request was in flight: outcome unknown, sent again next run"


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
    receipts to gather. `flush_rows` is half a round of requests (`concurrency x batch_size / 2`),
    which keeps the answers received but not yet written within the documented bound.

    Bounded: once `max_rows` receipts wait for the warehouse, `room()` blocks the senders until
    the running write is done, so a slow warehouse slows sending instead of filling memory."""

    def __init__(
        self,
        db: WarehouseThread,
        warehouse: Warehouse,
        *,
        flush_rows: int = 1,
        linger_s: float = 0.0,
        max_rows: int = 50_000,
    ) -> None:
        self._db = db
        self._warehouse = warehouse
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._flush_rows = max(flush_rows, 1)
        self._linger_s = linger_s
        self._max_rows = max(max_rows, self._flush_rows)
        self._gathered = asyncio.Event()
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self.rows_written = 0

    def add(self, table: pa.Table) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # re-raise a failed write
            self._task = None
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self._flush_rows:
            self._gathered.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write())

    async def room(self) -> None:
        """Wait while too many receipts wait for the warehouse."""
        while self._pending_rows >= self._max_rows and self._task is not None:
            await asyncio.shield(self._task)

    async def _write(self) -> None:
        while self._pending:
            if self._linger_s > 0 and self._pending_rows < self._flush_rows and not self._draining:
                try:
                    await asyncio.wait_for(self._gathered.wait(), self._linger_s)
                except TimeoutError:
                    pass
            self._gathered.clear()
            tables, self._pending = self._pending, []
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            try:
                await self._db.call(self._warehouse.append_receipts, table)
            finally:
                self._pending_rows -= table.num_rows
            self.rows_written += table.num_rows

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


class Delivery:
    """One run of `sender push` (or `--dry-run`)."""

    def __init__(
        self,
        settings: PushSettings,
        open_warehouse: Callable[[threading.Event], Warehouse],
        *,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._open_warehouse = open_warehouse
        self.progress = progress or NoProgress()
        self._clock = clock
        self.result = RunResult(
            run_id=uuid.uuid4().hex,
            dry_run=settings.dry_run,
            api_url=safe_url(settings.api_url),
            test_event_code=settings.test_event_code,
            started_at=utcnow(),
            max_failure_rate=settings.max_failure_rate,
        )
        self.receipts = ReceiptFactory(self.result.run_id, settings.test_event_code)
        # Set by the first SIGINT/SIGTERM once sending started: no new request goes out, the
        # requests in flight finish and are recorded. A second signal cancels them.
        self._stopping = asyncio.Event()
        self._sending = False
        self._fatal: AuthError | ApiConfigError | None = None
        self._abort_open = threading.Event()  # a signal while waiting for the delivery lease
        self._pacer = Pacer(settings.rate_limit, stop=self._stopping)
        self._dump: IO[bytes] | None = None

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
            result.finished_at = result.finished_at or utcnow()
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
        result.counts.pending = await db.call(
            warehouse.count_pending, self.terminal_statuses, s.limit, s.shard
        )
        await db.call(warehouse.insert_run, self._run_row(initial=True))
        sink = ReceiptSink(db, warehouse, flush_rows=s.concurrency * s.batch_size // 2,
                           linger_s=RECEIPT_LINGER_S)
        self.progress.start(result.counts.pending)
        log.info(
            "run %s: %d pending event(s)%s%s", result.run_id, result.counts.pending,
            f" in shard {s.shard}" if s.shard is not None else "",
            " (dry run)" if s.dry_run else "",
        )
        try:
            if s.dump is not None:
                self._dump = _open_dump(s.dump)
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
                ) as client:
                    await self._send_all(db, warehouse, sink, client)
            if self._fatal is not None:
                raise self._fatal
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
            if self._dump is not None:
                self._dump.close()
            self.progress.finish()
            try:
                await sink.drain()
            finally:
                if result.error is not None:
                    result.message = truncate(redact(str(result.error), s.token))
                result.finished_at = utcnow()
                await db.call(warehouse.update_run, result.run_id, self._run_row(initial=False))

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
        return row

    # -- reading -----------------------------------------------------------------------------

    async def _produce(
        self,
        db: WarehouseThread,
        warehouse: Warehouse,
        sink: ReceiptSink,
        emit: Callable[[Batch], Any],
    ) -> None:
        s = self.settings
        expire_before = int(self._clock() - s.max_age_days * 86400)
        reader = await db.call(
            warehouse.open_pending, self.terminal_statuses, s.limit, s.read_chunk_rows, s.shard
        )
        batcher = Batcher(s.batch_size)
        upcoming: asyncio.Future[pa.RecordBatch | None] = asyncio.get_running_loop().create_future()
        upcoming.set_result(None)
        try:
            upcoming = asyncio.ensure_future(db.call(reader.next))
            while (chunk := await upcoming) is not None and not self._stopping.is_set():
                upcoming = asyncio.ensure_future(db.call(reader.next))  # read ahead meanwhile
                prepared = prepare(chunk, expire_before=expire_before)
                self._record_skipped(prepared, sink)
                for batch in batcher.add(prepared.groups):
                    await emit(batch)
            for batch in batcher.flush():
                if self._stopping.is_set():
                    break
                await emit(batch)
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
            )
            for (source, source_id, reason), group in by_group.items()
        ]

    async def _dry_send(self, batch: Batch) -> None:
        counts = self.result.counts
        counts.requests += 1
        counts.sent += len(batch)
        self.result.groups[(batch.event_source, batch.event_source_id)] += len(batch)
        if self._dump is not None:
            self._dump.write(body(batch, self.settings.test_event_code) + b"\n")
        self.progress.advance(len(batch))

    # -- sending -----------------------------------------------------------------------------

    async def _send_all(
        self, db: WarehouseThread, warehouse: Warehouse, sink: ReceiptSink, client: ApiClient
    ) -> None:
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=2 * self.settings.concurrency)

        async def produce() -> None:
            await self._produce(db, warehouse, sink, queue.put)
            for _ in range(self.settings.concurrency):
                await queue.put(None)

        async def work() -> None:
            while (batch := await queue.get()) is not None:
                if self._stopping.is_set():
                    continue  # not sent: stays pending
                self.result.counts.sent += len(batch)
                self.result.groups[(batch.event_source, batch.event_source_id)] += len(batch)
                if self._dump is not None:
                    self._dump.write(body(batch, self.settings.test_event_code) + b"\n")
                await sink.room()
                await self._deliver(client, sink, batch)

        async def stop_when_asked() -> None:
            await self._stopping.wait()
            producer.cancel()  # it only reads the outbox and queues batches
            while not queue.empty():  # queued batches were never sent: they stay pending
                queue.get_nowait()
            for _ in range(self.settings.concurrency):
                queue.put_nowait(None)

        producer = asyncio.create_task(produce())
        tasks = [producer] + [asyncio.create_task(work()) for _ in range(self.settings.concurrency)]
        watcher = asyncio.create_task(stop_when_asked())
        workers = tasks[1:]
        try:
            try:
                await asyncio.gather(*tasks)
            except asyncio.CancelledError:
                stopped_on_purpose = (
                    self._stopping.is_set()
                    and producer.cancelled()
                    and not any(w.cancelled() for w in workers)
                )
                if not stopped_on_purpose:
                    raise
                await asyncio.gather(*workers)  # they finish the requests in flight
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _deliver(self, client: ApiClient, sink: ReceiptSink, first: Batch) -> None:
        """Send one batch until every event in it is delivered, rejected or out of attempts."""
        s, counts = self.settings, self.result.counts
        stack = [first]
        while stack and not self._stopping.is_set():
            batch = stack.pop()
            await self._pacer.wait()
            if self._stopping.is_set():
                break
            batch.attempt += 1
            sent_at = utcnow()
            counts.requests += 1
            try:
                response = await client.post(body(batch, s.test_event_code))
            except asyncio.CancelledError:
                # Stopped at once: the API may or may not have these events. Say so; the next
                # run sends them again with the same event_id, which TikTok deduplicates.
                sink.add(self._receipt(batch, FAILED, Outcome(
                    sent_at=sent_at, api_message=IN_FLIGHT_MESSAGE)))
                raise
            # Redact before anything truncates the message: a cut through the token would
            # leave a piece of it that redaction no longer recognises.
            verdict = classify(response)
            verdict = dataclasses.replace(verdict, message=redact(verdict.message, s.token))
            outcome = Outcome(
                sent_at=sent_at,
                acknowledged_at=utcnow() if response.status is not None else None,
                http_status=verdict.http_status,
                api_code=verdict.api_code,
                api_message=verdict.message,
                request_id=verdict.request_id,
            )
            kind = verdict.verdict
            if kind is Verdict.DELIVERED:
                self._settle(sink, batch, DELIVERED, outcome)
            elif kind is Verdict.RETRY:
                batch.retries += 1
                if batch.retries >= s.max_attempts:
                    self._settle(sink, batch, FAILED, outcome)
                    log.warning(
                        "%d event(s) failed after %d attempt(s): %s",
                        len(batch), batch.retries, _describe(verdict),
                    )
                    continue
                sink.add(self._receipt(batch, FAILED, outcome))
                delay = backoff_delay(
                    batch.retries, base=s.backoff_base, cap=s.backoff_max,
                    retry_after=verdict.retry_after,
                )
                log.debug("retrying %d event(s) in %.2fs: %s", len(batch), delay, _describe(verdict))
                if verdict.http_status == 429 or verdict.api_code in THROTTLE_CODES:
                    self._pacer.pause(delay)
                else:
                    await sleep_unless(self._stopping, delay)
                stack.append(batch)
            elif kind is Verdict.REJECT or kind is Verdict.SPLIT:
                stack.extend(self._isolate(sink, batch, verdict, outcome))
            else:
                sink.add(self._receipt(batch, FAILED, outcome))
                error = AuthError if kind is Verdict.FATAL_AUTH else ApiConfigError
                hint = (
                    "check TIKTOK_ACCESS_TOKEN and its access to the event source"
                    if kind is Verdict.FATAL_AUTH
                    else "check TIKTOK_API_URL"
                )
                # Stop like a signal does: no new request, the ones in flight finish and are
                # recorded (their events are not sent twice for nothing), then the error ends
                # the run.
                if self._fatal is None:
                    self._fatal = error(f"the API stopped the run: {_describe(verdict)}; {hint}")
                self._stopping.set()
                break
        if first.attempt == 0:  # stopped before its first send: it was never sent
            counts.sent -= len(first)

    def _isolate(
        self, sink: ReceiptSink, batch: Batch, verdict: Classification, outcome: Outcome
    ) -> list[Batch]:
        """Reject the events the API named (or the lone event), resend the rest or split it."""
        bad = {i for i in verdict.event_indexes if i < len(batch)}
        if verdict.verdict is Verdict.REJECT and bad:
            statuses = [REJECTED if i in bad else FAILED for i in range(len(batch))]
            sink.add(self._receipt(batch, statuses, outcome))
            self._count_final(REJECTED, len(bad), outcome.api_code, outcome.api_message)
            good = [i for i in range(len(batch)) if i not in bad]
            return [batch.subset(batch.events.take(good))] if good else []
        if len(batch) == 1:
            self._settle(sink, batch, REJECTED, outcome)
            return []
        sink.add(self._receipt(batch, FAILED, outcome))
        first, second = batch.halves()
        return [second, first]

    def _settle(self, sink: ReceiptSink, batch: Batch, status: str, outcome: Outcome) -> None:
        """Record the final status of every event of `batch`."""
        sink.add(self._receipt(batch, status, outcome))
        self._count_final(status, len(batch), outcome.api_code, outcome.api_message)

    def _count_final(self, status: str, n: int, api_code: int | None, message: str | None) -> None:
        counts = self.result.counts
        if status == DELIVERED:
            counts.delivered += n
        elif status == REJECTED:
            counts.rejected += n
        elif status == FAILED:
            counts.failed += n
        if status != DELIVERED:
            text = truncate(redact(message or "", self.settings.token), 120) or ""
            self.result.problems[(status, api_code, text)] += n
        self.progress.advance(n)

    def _receipt(self, batch: Batch, statuses: list[str] | str, outcome: Outcome) -> pa.Table:
        events = batch.events
        return self.receipts.build(
            event_source=batch.event_source,
            event_source_id=batch.event_source_id,
            event_ids=events.event_id,
            events=events.event,
            event_times=events.event_time,
            cells=events.experiment_cell,
            payload_sha256=events.payload_sha256,
            statuses=statuses,
            attempt=batch.attempt,
            outcome=outcome,
        )


def _describe(verdict: Classification) -> str:
    parts = []
    if verdict.http_status is not None and verdict.http_status != 200:
        parts.append(f"HTTP {verdict.http_status}")
    if verdict.api_code is not None:
        parts.append(f"code {verdict.api_code}")
    if verdict.message:
        parts.append(truncate(verdict.message, 200) or "")
    return " ".join(parts) or "no answer"


def _open_dump(path: Path) -> IO[bytes]:
    try:
        return path.open("wb")
    except OSError as exc:
        raise ConfigError(f"cannot write the dump file {path}: {exc.strerror}") from None
