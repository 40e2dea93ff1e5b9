"""Schemas of the receipts and runs tables, and the bulk builder of receipt rows.

Receipts are append-only: one row per event per attempt, written in bulk once per request. New
columns are only ever appended at the end of RECEIPT_COLUMNS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from tiktok_sender import __version__

RECEIPTS_TABLE: Final = "tiktok_delivery_receipts"
RUNS_TABLE: Final = "tiktok_delivery_runs"

DELIVERED: Final = "delivered"
REJECTED: Final = "rejected"
FAILED: Final = "failed"
EXPIRED: Final = "expired"
STATUSES: Final = (DELIVERED, REJECTED, FAILED, EXPIRED)

# Run outcomes the warehouse itself writes (the others come from the run: run_state).
RUN_RUNNING: Final = "running"
RUN_CRASHED: Final = "crashed"
CRASHED_MESSAGE: Final = (
    "the process ended without finishing this run (killed?); marked crashed by run {run_id}"
)

API_MESSAGE_MAX: Final = 500


@dataclass(frozen=True)
class Column:
    name: str
    arrow: pa.DataType
    sql: str  # the column's type, the same in DuckDB and PostgreSQL
    description: str


RECEIPT_COLUMNS: Final = (
    Column("receipt_id", pa.string(), "varchar", "Unique id of this receipt row."),
    Column("run_id", pa.string(), "varchar", "The `sender push` run that wrote it."),
    Column("event_id", pa.string(), "varchar", "Outbox event_id (the dedup key sent)."),
    Column("event", pa.string(), "varchar", "Event name."),
    Column("event_time", pa.int64(), "bigint", "Event time, Unix seconds."),
    Column("status", pa.string(), "varchar", "delivered | rejected | failed | expired."),
    Column("attempt", pa.int32(), "integer", "1 for the first send of the event in the run."),
    Column("http_status", pa.int32(), "integer", "HTTP status; null when nothing was answered."),
    Column("api_code", pa.int32(), "integer", "TikTok `code` of the response; null when none."),
    Column("api_message", pa.string(), "varchar", "Reason, truncated to 500 characters."),
    Column("request_id", pa.string(), "varchar", "TikTok `request_id` of the response."),
    Column("test_event_code", pa.string(), "varchar", "Set when sent to Test Events."),
    Column("sent_at", pa.timestamp("us"), "timestamp", "When the request started (UTC)."),
    Column("acknowledged_at", pa.timestamp("us"), "timestamp", "When the answer came (UTC)."),
    Column("payload_sha256", pa.string(), "varchar", "SHA-256 of the event's JSON as sent."),
    Column("experiment_cell", pa.string(), "varchar", "treatment | holdout, from the outbox."),
    Column("sender_version", pa.string(), "varchar", "Version of the sender."),
    Column("event_source_id", pa.string(), "varchar", "Pixel code / app id / event set id."),
    Column("event_source", pa.string(), "varchar", "web | app | offline | crm."),
    Column("row_fingerprint", pa.string(), "varchar", "For outbox rows with a null key only: "
           "SHA-256 of the row as read, so that it gets one receipt, once."),
)
RECEIPT_SCHEMA: Final = pa.schema([pa.field(c.name, c.arrow) for c in RECEIPT_COLUMNS])

RUN_COLUMNS: Final = (
    Column("run_id", pa.string(), "varchar", "Id of the run."),
    Column("started_at", pa.timestamp("us"), "timestamp", "Start (UTC)."),
    Column("finished_at", pa.timestamp("us"), "timestamp", "End (UTC); null while running."),
    Column("outcome", pa.string(), "varchar", "running | success | failures | auth_error | "
           "config_error | interrupted | error | crashed (left running by a process that ended "
           "without finishing it, found so by a later run)."),
    Column("settings", pa.string(), "varchar", "Settings as JSON (never the token)."),
    Column("pending", pa.int64(), "bigint", "Events pending at the start (after --limit)."),
    Column("sent", pa.int64(), "bigint", "Distinct events sent at least once."),
    Column("delivered", pa.int64(), "bigint", "Events delivered."),
    Column("rejected", pa.int64(), "bigint", "Events rejected (by the API or locally)."),
    Column("failed", pa.int64(), "bigint", "Events whose attempts ran out."),
    Column("expired", pa.int64(), "bigint", "Events too old to send."),
    Column("requests", pa.int64(), "bigint", "HTTP requests made."),
    Column("sender_version", pa.string(), "varchar", "Version of the sender."),
    Column("api_url", pa.string(), "varchar", "Endpoint, without credentials or query."),
    Column("test_event_code", pa.string(), "varchar", "Test event code of the run, if any."),
    Column("dry_run", pa.bool_(), "boolean", "True for --dry-run (nothing was sent)."),
    Column("message", pa.string(), "varchar", "Why the run stopped, for non-success outcomes."),
    Column("shard", pa.string(), "varchar", "K/N of `--shard K/N`; null for an unsharded run."),
    Column("held", pa.int64(), "bigint", "Events never sent in this run because their event "
           "source was stopped (permission or configuration error, an outage); still pending."),
    Column("outbox_seq_through", pa.int64(), "bigint", "The outbox's highest outbox_seq at the "
           "start, set when the run handed out and receipted every pending event up to it: the "
           "next run reads the rows above it and the open events (README, \"What a run reads\")."),
)
RUN_SCHEMA: Final = pa.schema([pa.field(c.name, c.arrow) for c in RUN_COLUMNS])


def truncate(message: str | None, limit: int = API_MESSAGE_MAX) -> str | None:
    if message is None:
        return None
    return message if len(message) <= limit else message[: limit - 1] + "…"


@dataclass(frozen=True)
class Outcome:
    """What one request (or a local decision) said about a group of events."""

    sent_at: datetime | None = None
    acknowledged_at: datetime | None = None
    http_status: int | None = None
    api_code: int | None = None
    api_message: str | None = None
    request_id: str | None = None


Values = Sequence[Any] | pa.Array  # a column of receipts: Python values or an Arrow array


def _column(values: Values, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array):
        return values if values.type == kind else values.cast(kind)
    return pa.array(values, kind)


class ReceiptFactory:
    """Builds Arrow tables of receipts for one run; ids are `<run_id>-<sequence>` (the sequence
    zero-padded to 9 digits, wider past a billion receipts)."""

    def __init__(self, run_id: str, test_event_code: str | None) -> None:
        self.run_id = run_id
        self.test_event_code = test_event_code
        self._next = 1
        self._constants: dict[tuple[object, pa.DataType, int], pa.Array] = {}

    def _const(self, value: object, kind: pa.DataType, n: int) -> pa.Array:
        """`n` copies of `value`; the run-wide ones (run id, version, event source, status...)
        are cached per length: most requests have the same batch size."""
        if value is None:
            return pa.nulls(n, kind)
        key = (value, kind, n)
        cached = self._constants.get(key)
        if cached is None:
            cached = pa.repeat(pa.scalar(value, kind), n)
            if len(self._constants) < 256:
                self._constants[key] = cached
        return cached

    def _ids(self, n: int) -> pa.Array:
        first, self._next = self._next, self._next + n
        numbers = pc.cast(pa.array(range(first, first + n), pa.int64()), pa.string())
        return pc.binary_join_element_wise(f"{self.run_id}-", pc.utf8_lpad(numbers, 9, "0"), "")

    def build(
        self,
        *,
        event_source: str | None,
        event_source_id: str | None,
        event_ids: Values,
        events: Values,
        event_times: Values,
        cells: Values,
        payload_sha256: Values,
        statuses: Values | str,
        attempt: int | None,
        outcome: Outcome,
        row_fingerprints: Values | None = None,
    ) -> pa.Table:
        """Receipts of `len(event_ids)` events of one event source. `row_fingerprints` is given
        for outbox rows with a null key only (`SqlWarehouse.unreceipted_null_key_rows`); the
        column is null otherwise; `event_source`/`event_source_id` may then be None."""
        n = len(event_ids)

        def const(value: object, kind: pa.DataType) -> pa.Array:
            return self._const(value, kind, n)

        def varying(value: object, kind: pa.DataType) -> pa.Array:  # differs per request
            return pa.nulls(n, kind) if value is None else pa.repeat(pa.scalar(value, kind), n)

        status_column = (
            const(statuses, pa.string()) if isinstance(statuses, str) else _column(statuses, pa.string())
        )
        columns = [
            self._ids(n),
            const(self.run_id, pa.string()),
            _column(event_ids, pa.string()),
            _column(events, pa.string()),
            _column(event_times, pa.int64()),
            status_column,
            const(attempt, pa.int32()),
            const(outcome.http_status, pa.int32()),
            const(outcome.api_code, pa.int32()),
            const(truncate(outcome.api_message), pa.string()),
            varying(outcome.request_id, pa.string()),
            const(self.test_event_code, pa.string()),
            varying(outcome.sent_at, pa.timestamp("us")),
            varying(outcome.acknowledged_at, pa.timestamp("us")),
            _column(payload_sha256, pa.string()),
            _column(cells, pa.string()),
            const(__version__, pa.string()),
            const(event_source_id, pa.string()),
            const(event_source, pa.string()),
            pa.nulls(n, pa.string()) if row_fingerprints is None
            else _column(row_fingerprints, pa.string()),
        ]
        return pa.Table.from_arrays(columns, schema=RECEIPT_SCHEMA)
