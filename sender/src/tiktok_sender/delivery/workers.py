"""The workers of a `sender push` run: send batches, follow the policy, record every answer.

`Workers.send_all` runs `concurrency` workers over the batches the reader queues. For each answer,
`policy.decide` says what it means; the workers write the receipts it implies (`ReceiptSink`),
queue its follow-up requests (retries first, halves breadth first), pause every worker on
throttling, and stop an event source or the run when the policy says so. The run's lifecycle
(the warehouse, signals, the run row) is `delivery.Delivery`'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import IO, Any

import pyarrow as pa

from tiktok_sender.api.batch import Batch, GroupKey, body
from tiktok_sender.api.classify import Classification, classify
from tiktok_sender.api.client import ApiClient
from tiktok_sender.api.pacing import Pacer, sleep_unless
from tiktok_sender.delivery.policy import (
    EXHAUSTED,
    Context,
    Decision,
    Part,
    Probe,
    Scope,
    Stop,
    StopKind,
    decide,
    describe,
)
from tiktok_sender.delivery.run_state import Clock, Progress, RunResult
from tiktok_sender.delivery.sink import ReceiptSink
from tiktok_sender.errors import ApiConfigError, AuthError, SenderError
from tiktok_sender.settings import PushSettings, redact
from tiktok_sender.tables.receipts import (
    DELIVERED,
    FAILED,
    REJECTED,
    Outcome,
    ReceiptFactory,
    truncate,
)

log = logging.getLogger("tiktok_sender")

IN_FLIGHT_MESSAGE = "interrupted while the request was in flight: outcome unknown, sent again next run"
Produce = Callable[[Callable[[Batch], Awaitable[Any]]], Awaitable[None]]


class Workers:
    """The sending side of one run; `stopping` is shared with the run (signals set it too)."""

    def __init__(
        self,
        settings: PushSettings,
        result: RunResult,
        receipts: ReceiptFactory,
        progress: Progress,
        stopping: asyncio.Event,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.result = result
        self.receipts = receipts
        self.progress = progress
        self._stopping = stopping
        self._pacer = Pacer(settings.rate_limit, stop=stopping)
        self.fatal: AuthError | ApiConfigError | None = None  # a stop of the whole run
        self._stopped: dict[GroupKey, Stop] = {}  # event sources stopped in this run
        self._delivered_sources: set[GroupKey] = set()  # sources with a delivery in this run
        self.dump: IO[bytes] | None = None

    async def send_all(self, produce_into: Produce, sink: ReceiptSink, client: ApiClient) -> None:
        """Send what `produce_into` hands out, on `concurrency` workers, until it is done or the
        run stops."""
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=2 * self.settings.concurrency)

        async def produce() -> None:
            await produce_into(queue.put)
            for _ in range(self.settings.concurrency):
                await queue.put(None)

        async def work() -> None:
            while (batch := await queue.get()) is not None:
                if self._stopping.is_set():
                    continue  # not sent: stays pending
                self.result.counts.sent += len(batch)
                self.result.groups[batch.key] += len(batch)
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
        """Send one batch until every event in it is settled for this run: delivered, rejected,
        failed after its attempts, or held because its source or the run stopped. What each
        answer means is `policy.decide`; this loop sends, records and follows up."""
        s = self.settings
        parts: deque[Batch] = deque([first])
        probe: Probe | None = None
        while parts:
            batch = parts.popleft()
            if not await self._admit(batch, sink):
                self._hold(batch, parts)
                break
            batch.attempt += 1
            sent_at = self._clock.utcnow()
            self.result.counts.requests += 1
            request = body(batch, s.test_event_code)
            if self.dump is not None:
                self.dump.write(request + b"\n")
            try:
                response = await client.post(request)
            except asyncio.CancelledError:
                # Stopped at once: the API may or may not have these events. Say so; the next
                # run sends them again with the same event_id, which TikTok deduplicates.
                sink.add(self._receipt(batch, FAILED, Outcome(
                    sent_at=sent_at, api_message=IN_FLIGHT_MESSAGE)), sent=len(batch))
                raise
            # Redact before anything truncates the message: a cut through the token would
            # leave a piece of it that redaction no longer recognises.
            answer = classify(response)
            answer = dataclasses.replace(answer, message=redact(answer.message, s.token))
            context = Context(
                max_attempts=s.max_attempts, backoff_base=s.backoff_base,
                backoff_max=s.backoff_max, source_delivered=batch.key in self._delivered_sources,
                probe=probe, jitter=random.random(),
            )
            decision = decide(answer, Part(len(batch), batch.retries, batch.depth),
                              batch.events.event_id.to_pylist() if answer.problems else (),
                              context)
            probe = decision.probe
            self._record(sink, batch, answer, decision, Outcome(
                sent_at=sent_at,
                acknowledged_at=self._clock.utcnow() if response.status is not None else None,
                http_status=answer.http_status,
                api_code=answer.api_code,
                api_message=answer.message,
                request_id=answer.request_id,
            ))
            if decision.stop is not None:
                self._stop(batch, decision.stop)
            retry_delay = 0.0
            for follow in reversed(decision.follow_ups):
                part = batch.part(follow.indexes, retries=follow.retries, depth=follow.depth)
                if follow.urgent:
                    parts.appendleft(part)
                    retry_delay = max(retry_delay, follow.delay)
                else:
                    parts.append(part)
            if decision.pause:
                self._pacer.pause(decision.pause)
            elif retry_delay:
                log.debug("retrying %d event(s) in %.2fs: %s", len(batch), retry_delay,
                          describe(answer))
                await sleep_unless(self._stopping, retry_delay)
        if first.attempt == 0:  # never sent: not counted as sent
            self.result.counts.sent -= len(first)

    def _halted(self, batch: Batch) -> bool:
        return self._stopping.is_set() or batch.key in self._stopped

    async def _admit(self, batch: Batch, sink: ReceiptSink) -> bool:
        """Wait for the pacer and for room within the crash bound; False when the run or the
        batch's source stopped meanwhile (another worker may have stopped it): then nothing is
        reserved and the batch is not sent."""
        if self._halted(batch):
            return False
        await self._pacer.wait()
        if self._halted(batch):
            return False
        await sink.reserve(len(batch))
        if self._halted(batch):
            sink.release(len(batch))
            return False
        return True

    def _record(
        self, sink: ReceiptSink, batch: Batch, answer: Classification, decision: Decision,
        outcome: Outcome,
    ) -> None:
        """The receipts of one answer (one table per status and message), and the counts of the
        events it settles for the run."""
        note = decision.note
        if note:
            outcome = dataclasses.replace(
                outcome, api_message=f"{outcome.api_message}; {note}" if outcome.api_message else note)
        tables = []
        if decision.messages:
            groups: dict[tuple[str, str | None], list[int]] = {}
            for i, status in enumerate(decision.statuses):
                message = decision.messages.get(i)
                text = f"{outcome.api_message}: {message}" if message else outcome.api_message
                groups.setdefault((status, text), []).append(i)
            for (status, text), indexes in groups.items():
                part = batch.part(indexes, retries=batch.retries, depth=batch.depth)
                tables.append(self._receipt(part, status, dataclasses.replace(
                    outcome, api_message=text)))
            table = pa.concat_tables(tables)
        else:
            statuses = decision.statuses
            table = self._receipt(batch, statuses[0] if len(set(statuses)) == 1 else list(statuses),
                                  outcome)
        sink.add(table, sent=len(batch))
        final = decision.final()
        settled: Counter[str] = Counter(decision.statuses[i] for i in final)
        if settled[DELIVERED]:
            self._delivered_sources.add(batch.key)
        for status, n in settled.items():
            self._count_final(status, n, outcome.api_code, outcome.api_message)
        if settled[FAILED] and decision.stop is None and decision.note.startswith(EXHAUSTED):
            log.warning("%d event(s) failed after %d attempt(s): %s",
                        settled[FAILED], batch.retries + 1, describe(answer))

    def source_error(self) -> SenderError | None:
        """The error that ends a run in which event sources stopped (the worst kind first);
        None when none did or they only stopped because the API kept failing (exit 1)."""
        for kind, error in ((StopKind.AUTH, AuthError), (StopKind.CONFIG, ApiConfigError)):
            stops = [(key, stop) for key, stop in self._stopped.items() if stop.kind is kind]
            if stops:
                listed = "; ".join(f"{key[0]} {key[1]}: {stop.reason}" for key, stop in stops)
                hint = ("check that the token may send to it" if kind is StopKind.AUTH
                        else "check the event source id")
                return error(f"stopped sending to {len(stops)} event source(s), whose events stay "
                             f"pending ({hint}): {listed}")
        return None

    def _stop(self, batch: Batch, stop: Stop) -> None:
        """Stop the batch's event source, or the run, as the policy decided."""
        if stop.scope is Scope.RUN:
            if self.fatal is None:
                error = AuthError if stop.kind is StopKind.AUTH else ApiConfigError
                hint = ("check TIKTOK_ACCESS_TOKEN and its access to the event source"
                        if stop.kind is StopKind.AUTH else "check TIKTOK_API_URL")
                self.fatal = error(f"the API stopped the run: {stop.reason}; {hint}")
            # Like a signal: no new request; the ones in flight finish and are recorded.
            self._stopping.set()
            return
        if batch.key not in self._stopped:
            self._stopped[batch.key] = stop
            self.result.stopped_sources[batch.key] = stop.reason
            log.warning("stopped sending to %s %s: %s; its events stay pending",
                        batch.event_source, batch.event_source_id, stop.reason)

    def _hold(self, batch: Batch, parts: deque[Batch]) -> None:
        """Send `batch` and the parts still waiting no more: their source (or the run) stopped.
        Events sent before in this run end `failed` (their last receipt); events never sent are
        `held` (no receipt of this run). All stay pending."""
        stop = self._stopped.get(batch.key)
        reason = stop.reason if stop is not None else "the run stopped"
        for part in (batch, *parts):
            if part.attempt:
                self._count_final(FAILED, len(part), None, f"not sent again: {reason}")
            elif stop is not None:  # never sent: a run stop leaves such events uncounted
                self._count_held(part.key, len(part), reason)
        parts.clear()

    def _count_held(self, key: GroupKey, n: int, reason: str) -> None:
        self.result.counts.held += n
        self.result.problems[("held", None, truncate(f"{key[0]} {key[1]}: {reason}", 160) or "")] += n
        self.progress.advance(n)

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
