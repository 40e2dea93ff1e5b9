"""Outbox rows to `event/track` payloads: validation, the event JSON, batching per event source.

Each event is encoded once (orjson) and kept as bytes; a request body is the shared envelope plus
the events joined, so splitting a batch never re-encodes anything. `payload_sha256` is the SHA-256
of an event's bytes as sent inside `data`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tiktok_sender.contract import (
    ALL_STANDARD_EVENTS,
    CURRENCIES,
    CUSTOM_EVENT_NAME,
    EVENT_SOURCES,
    SHA256_HEX,
    STANDARD_EVENTS,
    is_sha256_hex,
    is_valid_event_name,
)

HASHED_FIELDS = (
    ("email_sha256", "email"),
    ("phone_sha256", "phone"),
    ("external_id_sha256", "external_id"),
)


class Event(NamedTuple):
    """One event ready to send: what receipts need, plus its encoded JSON."""

    event_id: str
    event: str
    event_time: int
    experiment_cell: str | None
    payload: bytes
    payload_sha256: str


class Skipped(NamedTuple):
    """An outbox row that is not sent: too old (expired) or invalid (rejected locally)."""

    event_source: str
    event_source_id: str
    event_id: str
    event: str
    event_time: int
    experiment_cell: str | None
    reason: str


GroupKey = tuple[str, str]  # (event_source, event_source_id)


@dataclass
class Prepared:
    """One chunk of outbox rows, sorted into sendable events per group, expired and invalid."""

    groups: dict[GroupKey, list[Event]] = field(default_factory=dict)
    expired: list[Skipped] = field(default_factory=list)
    invalid: list[Skipped] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(len(v) for v in self.groups.values()) + len(self.expired) + len(self.invalid)


# Outbox columns that make up an event, in the argument order of `build_event`.
EVENT_COLUMNS = (
    "event", "event_time", "event_id", "email_sha256", "phone_sha256", "external_id_sha256",
    "ttclid", "ttp", "ip", "user_agent", "page_url", "value", "currency", "order_id",
)


def build_event(
    event: str,
    event_time: int,
    event_id: str,
    email: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    ttclid: str | None = None,
    ttp: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    page_url: str | None = None,
    value: float | None = None,
    currency: str | None = None,
    order_id: str | None = None,
) -> dict[str, Any]:
    """The v1.3 event object of a valid outbox row; null and empty values are left out."""
    out: dict[str, Any] = {"event": event, "event_time": int(event_time), "event_id": str(event_id)}
    user = {}
    if email is not None:
        user["email"] = email
    if phone is not None:
        user["phone"] = phone
    if external_id is not None:
        user["external_id"] = external_id
    if ttclid:
        user["ttclid"] = ttclid
    if ttp:
        user["ttp"] = ttp
    if ip:
        user["ip"] = ip
    if user_agent:
        user["user_agent"] = user_agent
    if user:
        out["user"] = user
    properties: dict[str, Any] = {}
    if value is not None:
        properties["value"] = value
    if currency:
        properties["currency"] = currency
    if order_id:
        properties["order_id"] = order_id
    if properties:
        out["properties"] = properties
    if page_url:
        out["page"] = {"url": page_url}
    return out


def invalid_reason(row: dict[str, Any]) -> str | None:
    """Why a row cannot be sent (checked locally before any request), or None when it can.

    This is the authoritative check; `_suspects` is only a vectorised pre-filter that flags
    every row this function might reject."""
    source = row.get("event_source")
    if source not in EVENT_SOURCES:
        return f"event_source {source!r} is not one of web, app, offline, crm"
    for column in ("event_source_id", "event_id", "event"):
        if not row.get(column):
            return f"{column} is missing"
    if row.get("event_time") is None:
        return "event_time is missing"
    if row["event_time"] <= 0:
        return "event_time is not a positive Unix time"
    if not is_valid_event_name(source, row["event"]):
        return f"event {row['event']!r} is not a standard {source} event nor a valid custom name"
    for column, _ in HASHED_FIELDS:
        value = row.get(column)
        if value is not None and not is_sha256_hex(value):
            return f"{column} is not 64 lowercase hex characters (SHA-256)"
    value = row.get("value")
    if value is not None and not math.isfinite(value):
        return "value is not a finite number"
    currency = row.get("currency")
    if currency is not None and currency not in CURRENCIES:
        return f"currency {currency!r} is not supported by TikTok"
    return None


_STANDARD_PAIRS = pa.array(sorted(f"{s}|{e}" for s, names in STANDARD_EVENTS.items() for e in names))
_ALL_STANDARD = pa.array(sorted(ALL_STANDARD_EVENTS))
_SOURCES = pa.array(sorted(EVENT_SOURCES))
_CURRENCIES = pa.array(sorted(CURRENCIES))


def _missing(column: pa.Array) -> pa.Array:
    return pc.or_kleene(pc.is_null(column), pc.equal(column, ""))


def _suspects(batch: pa.RecordBatch) -> list[bool]:
    """Vectorised pre-filter: True for every row `invalid_reason` might reject (a superset)."""
    col = batch.column
    source, event = col("event_source"), col("event")
    checks = [
        pc.invert(pc.is_in(source, value_set=_SOURCES)),
        _missing(col("event_source_id")),
        _missing(col("event_id")),
        _missing(event),
        pc.is_null(col("event_time")),
        pc.less_equal(col("event_time"), 0),
        pc.invert(
            pc.or_(
                pc.is_in(pc.binary_join_element_wise(source, event, "|"), value_set=_STANDARD_PAIRS),
                pc.and_(
                    pc.match_substring_regex(event, CUSTOM_EVENT_NAME.pattern.join("^$")),
                    pc.invert(pc.is_in(event, value_set=_ALL_STANDARD)),
                ),
            )
        ),
        pc.invert(pc.is_finite(col("value"))),
        pc.and_(pc.is_valid(col("currency")),
                pc.invert(pc.is_in(col("currency"), value_set=_CURRENCIES))),
    ]
    checks += [
        pc.invert(pc.match_substring_regex(col(column), SHA256_HEX.pattern.join("^$")))
        for column, _ in HASHED_FIELDS
    ]
    # A null check result means a null input; the checks that matter for nulls (missing
    # values) never return null, so null counts as "not flagged" here.
    flagged = pc.fill_null(checks[0], False)
    for check in checks[1:]:
        flagged = pc.or_(flagged, pc.fill_null(check, False))
    return flagged.to_pylist()  # type: ignore[no-any-return]


def prepare(batch: pa.RecordBatch, *, expire_before: int) -> Prepared:
    """Validate and encode one chunk of pending outbox rows."""
    prepared = Prepared()
    names = batch.schema.names
    if batch.num_rows == 0:
        return prepared
    times = batch.column("event_time")
    expired = pc.fill_null(pc.less(times, expire_before), False).to_pylist()
    suspects = _suspects(batch)
    sources = batch.column("event_source").to_pylist()
    source_ids = batch.column("event_source_id").to_pylist()
    cells = batch.column("experiment_cell").to_pylist()
    fields = [batch.column(c).to_pylist() for c in EVENT_COLUMNS]
    groups = prepared.groups
    dumps, sha256 = orjson.dumps, hashlib.sha256
    for i, values in enumerate(zip(*fields, strict=True)):
        if expired[i] or suspects[i]:
            row = {name: batch.column(name)[i].as_py() for name in names}
            if expired[i]:
                prepared.expired.append(_skipped(row, "event is older than the maximum age"))
                continue
            reason = invalid_reason(row)
            if reason is not None:
                prepared.invalid.append(_skipped(row, reason))
                continue
        # bytes(memoryview(...)) copies: orjson's own buffer keeps a 4 KiB allocation.
        encoded = bytes(memoryview(dumps(build_event(*values))))
        event = Event(values[2], values[0], values[1], cells[i], encoded,
                      sha256(encoded).hexdigest())
        key = (sources[i], source_ids[i])
        bucket = groups.get(key)
        if bucket is None:
            groups[key] = [event]
        else:
            bucket.append(event)
    return prepared


def _skipped(row: dict[str, Any], reason: str) -> Skipped:
    return Skipped(
        row.get("event_source") or "",
        row.get("event_source_id") or "",
        row.get("event_id"),  # type: ignore[arg-type]  # null ids stay null in the receipt
        row.get("event"),  # type: ignore[arg-type]
        row.get("event_time"),  # type: ignore[arg-type]
        row.get("experiment_cell"),
        reason,
    )


@dataclass
class Batch:
    """Events of one group, sent together; `attempt` counts sends of these events in the run."""

    event_source: str
    event_source_id: str
    events: Sequence[Event]
    attempt: int = 0
    retries: int = 0

    def __len__(self) -> int:
        return len(self.events)

    def subset(self, events: Sequence[Event]) -> Batch:
        return Batch(self.event_source, self.event_source_id, events, self.attempt, self.retries)

    def halves(self) -> tuple[Batch, Batch]:
        middle = len(self.events) // 2
        return self.subset(self.events[:middle]), self.subset(self.events[middle:])


def envelope(event_source: str, event_source_id: str, test_event_code: str | None) -> bytes:
    """The request body up to and including `"data":[`."""
    head: dict[str, Any] = {"event_source": event_source, "event_source_id": event_source_id}
    if test_event_code:
        head["test_event_code"] = test_event_code
    return orjson.dumps(head)[:-1] + b',"data":['


def body(batch: Batch, test_event_code: str | None) -> bytes:
    """The exact request body of `batch`."""
    head = envelope(batch.event_source, batch.event_source_id, test_event_code)
    return head + b",".join(e.payload for e in batch.events) + b"]}"


class Batcher:
    """Accumulates events per group and hands out batches of at most `size` events."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._open: dict[GroupKey, list[Event]] = {}

    def add(self, groups: dict[GroupKey, list[Event]]) -> Iterator[Batch]:
        for key, events in groups.items():
            bucket = self._open.setdefault(key, [])
            bucket.extend(events)
            while len(bucket) >= self.size:
                yield Batch(key[0], key[1], bucket[: self.size])
                del bucket[: self.size]

    def flush(self) -> Iterator[Batch]:
        for key, bucket in self._open.items():
            if bucket:
                yield Batch(key[0], key[1], list(bucket))
        self._open.clear()
