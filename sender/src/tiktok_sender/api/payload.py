"""Outbox rows to `event/track` payloads: validation, the event JSON, batching per event source.

Events stay columnar (`Events`: Arrow arrays) from the outbox read to the receipts. Each event is
encoded once (`render.render_events`, orjson for the rare rows it cannot do) and kept as a
string; a request body is the shared envelope plus the events joined, so splitting a batch never
re-encodes anything. `payload_sha256` is the SHA-256 of an event's bytes as sent inside `data`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tiktok_sender.api.batch import Events, GroupKey
from tiktok_sender.api.contract import (
    ALL_STANDARD_EVENTS,
    ATT_STATUSES,
    CURRENCIES,
    CUSTOM_EVENT_NAME,
    DEVICE_IDS,
    EVENT_SOURCES,
    SHA256_HEX,
    STANDARD_EVENTS,
    is_sha256_hex,
    is_valid_event_name,
)
from tiktok_sender.api.render import USER_FIELDS, needs_orjson, render_events

HASHED_FIELDS = (
    ("email_sha256", "email"),
    ("phone_sha256", "phone"),
    ("external_id_sha256", "external_id"),
    ("first_name_sha256", "first_name"),
    ("last_name_sha256", "last_name"),
    ("zip_code_sha256", "zip_code"),
)


class Skipped(NamedTuple):
    """An outbox row that is not sent: too old (expired) or invalid (rejected locally)."""

    event_source: str
    event_source_id: str
    event_id: str
    event: str
    event_time: int
    experiment_cell: str | None
    reason: str
    row_fingerprint: str | None = None  # rows with a null key only (one receipt, once)


@dataclass
class Prepared:
    """One chunk of outbox rows, sorted into sendable events per group, expired and invalid."""

    groups: dict[GroupKey, Events] = field(default_factory=dict)
    expired: list[Skipped] = field(default_factory=list)
    invalid: list[Skipped] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(len(v) for v in self.groups.values()) + len(self.expired) + len(self.invalid)


# Outbox columns that make up an event, in the argument order of `build_event`.
EVENT_COLUMNS = (
    "event", "event_time", "event_id", "email_sha256", "phone_sha256", "external_id_sha256",
    "ttclid", "ttp", "ip", "user_agent", "page_url", "value", "currency", "order_id",
    "limited_data_use", "att_status", "idfa", "idfv", "gaid", "first_name_sha256",
    "last_name_sha256", "zip_code_sha256", "city", "state", "country", "locale",
    "properties_predicted_ltv", "contents", "content_type", "num_items",
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
    limited_data_use: bool | None = None,
    att_status: str | None = None,
    idfa: str | None = None,
    idfv: str | None = None,
    gaid: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    zip_code: str | None = None,
    city: str | None = None,
    state: str | None = None,
    country: str | None = None,
    locale: str | None = None,
    predicted_ltv: float | None = None,
    contents: str | None = None,
    content_type: str | None = None,
    num_items: int | None = None,
) -> dict[str, Any]:
    """The v1.3 event object of a valid outbox row; null and empty values are left out, and
    `limited_data_use` unless true. The user's keys come in `render.USER_FIELDS` order."""
    out: dict[str, Any] = {"event": event, "event_time": int(event_time), "event_id": str(event_id)}
    given = {
        "email": email, "phone": phone, "external_id": external_id, "ttclid": ttclid, "ttp": ttp,
        "ip": ip, "user_agent": user_agent, "idfa": idfa, "idfv": idfv, "gaid": gaid,
        "att_status": att_status, "first_name": first_name, "last_name": last_name, "city": city,
        "state": state, "country": country, "zip_code": zip_code, "locale": locale,
    }
    # the keys, their order and which are left out when empty: the columnar renderer's own list
    user = {key: given[key] for key, _, omit_empty in USER_FIELDS
            if given[key] is not None and not (omit_empty and given[key] == "")}
    if user:
        out["user"] = user
    properties: dict[str, Any] = {}
    if value is not None:
        properties["value"] = value
    if currency:
        properties["currency"] = currency
    if order_id:
        properties["order_id"] = order_id
    if predicted_ltv is not None:
        properties["predicted_ltv"] = predicted_ltv
    if content_type:
        properties["content_type"] = content_type
    if contents is not None:
        properties["contents"] = parse_contents(contents)
    if num_items is not None:
        properties["num_items"] = int(num_items)
    if properties:
        out["properties"] = properties
    if page_url:
        out["page"] = {"url": page_url}
    if limited_data_use:
        out["limited_data_use"] = True
    return out


CONTENT_TYPES = frozenset({"product", "product_group"})


class ContentsError(ValueError):
    """An outbox `contents` value that is not the JSON array of lines TikTok takes."""


def parse_contents(text: str) -> list[dict[str, Any]]:
    """The outbox's `contents` (a JSON array of the order's lines) as sent: each line's
    content_id, content_name (when set), quantity and price, in that order; other keys (Spark's
    line position) are dropped. ContentsError naming the problem when it is not such an array."""
    try:
        lines = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ContentsError("contents is not JSON") from exc
    if not isinstance(lines, list) or not lines:
        raise ContentsError("contents is not a non-empty JSON array")
    out = []
    for number, line in enumerate(lines, 1):
        if not isinstance(line, dict):
            raise ContentsError(f"contents line {number} is not an object")
        content_id, name = line.get("content_id"), line.get("content_name")
        quantity, price = line.get("quantity"), line.get("price")
        if not isinstance(content_id, str) or not content_id:
            raise ContentsError(f"contents line {number}: content_id is not a non-empty string")
        if name is not None and not isinstance(name, str):
            raise ContentsError(f"contents line {number}: content_name is not a string")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ContentsError(f"contents line {number}: quantity is not a whole number above 0")
        if (isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price)
                or price < 0):
            raise ContentsError(f"contents line {number}: price is not a number of 0 or more")
        item: dict[str, Any] = {"content_id": content_id}
        if name is not None:
            item["content_name"] = name
        item["quantity"] = quantity
        item["price"] = float(price)
        out.append(item)
    return out


def invalid_reason(row: dict[str, Any]) -> str | None:
    """Why a row cannot be sent (checked locally before any request), or None when it can.

    This is the authoritative check; `_suspects` is only a vectorised pre-filter that flags
    every row this function might reject."""
    if row.get("is_erased"):
        return "its customer asked to be erased"
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
    contents, content_type = row.get("contents"), row.get("content_type")
    if contents is not None:
        try:
            parse_contents(contents)
        except ContentsError as exc:
            return str(exc)
    if content_type and content_type not in CONTENT_TYPES:
        return f"content_type {content_type!r} is not product or product_group"
    num_items = row.get("num_items")
    if num_items is not None and num_items < 0:
        return "num_items is negative"
    predicted = row.get("properties_predicted_ltv")
    if predicted is not None and not (math.isfinite(predicted) and predicted >= 0):
        return "properties_predicted_ltv is not a finite number of 0 or more"
    currency = row.get("currency")
    if currency is not None and currency not in CURRENCIES:
        return f"currency {currency!r} is not supported by TikTok"
    att_status = row.get("att_status")
    if att_status and att_status not in ATT_STATUSES:
        return f"att_status {att_status!r} is not one of {', '.join(sorted(ATT_STATUSES))}"
    for column, pattern in DEVICE_IDS.items():
        device_id = row.get(column)
        if device_id and pattern.fullmatch(device_id) is None:
            case = "upper" if column != "gaid" else "lower"
            return f"{column} is not a UUID in {case} case nor a SHA-256"
    return None


_STANDARD_PAIRS = pa.array(sorted(f"{s}|{e}" for s, names in STANDARD_EVENTS.items() for e in names))
_ALL_STANDARD = pa.array(sorted(ALL_STANDARD_EVENTS))
_SOURCES = pa.array(sorted(EVENT_SOURCES))
_CURRENCIES = pa.array(sorted(CURRENCIES))
_ATT_STATUSES = pa.array(sorted(ATT_STATUSES))


def _missing(column: pa.Array) -> pa.Array:
    return pc.or_kleene(pc.is_null(column), pc.equal(column, ""))


def _suspects(batch: pa.RecordBatch) -> list[bool]:
    """Vectorised pre-filter: True for every row `invalid_reason` might reject (a superset)."""
    return _suspect_mask(batch).to_pylist()  # type: ignore[no-any-return]


def _suspect_mask(batch: pa.RecordBatch) -> pa.Array:
    """`_suspects` as an Arrow boolean array."""
    col = batch.column
    source, event = col("event_source"), col("event")
    checks = [
        col("is_erased"),
        # contents are parsed and checked row by row (rare: ecommerce events with order lines)
        pc.is_valid(col("contents")),
        pc.is_valid(col("content_type")),
        pc.is_valid(col("num_items")),
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
        pc.invert(pc.is_finite(col("properties_predicted_ltv"))),
        pc.less(col("properties_predicted_ltv"), 0),
        pc.and_(pc.is_valid(col("currency")),
                pc.invert(pc.is_in(col("currency"), value_set=_CURRENCIES))),
        pc.and_(pc.is_valid(col("att_status")),
                pc.invert(pc.is_in(col("att_status"), value_set=_ATT_STATUSES))),
    ]
    checks += [
        pc.invert(pc.match_substring_regex(col(column), f"^(?:{pattern.pattern})$"))
        for column, pattern in DEVICE_IDS.items()
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
    return flagged


def test_event_id_suffix(test_event_code: str | None) -> str | None:
    """What a test push appends to each `event_id` it sends: `~test-<code>`.

    Whether TikTok deduplicates test events against live ones is not documented. If it does, a
    test push of an event would make the live push of the same event, within 48 hours, a
    duplicate that TikTok drops. Test pushes therefore send ids of their own; receipts keep the
    outbox's `event_id`."""
    return f"~test-{test_event_code}" if test_event_code else None


def prepare(batch: pa.RecordBatch, *, expire_before: int, id_suffix: str | None = None) -> Prepared:
    """Validate and encode one chunk of pending outbox rows.

    Columnar: `render_events` builds every event's JSON with Arrow compute. Python only touches
    the rare rows that are expired, suspect (`_suspect_mask`) or need orjson's escaping, and
    hashes each payload (SHA-256). `id_suffix` is appended to the `event_id` sent (test pushes:
    `test_event_id_suffix`); the events keep the outbox's id."""
    prepared = Prepared()
    if batch.num_rows == 0:
        return prepared
    rendered = batch
    if id_suffix:
        index = batch.schema.get_field_index("event_id")
        suffixed = pc.binary_join_element_wise(batch.column(index), id_suffix, "")
        rendered = batch.set_column(index, "event_id", suffixed)
    expired = pc.fill_null(pc.less(batch.column("event_time"), expire_before), False)
    slow = pc.or_(pc.or_(expired, _suspect_mask(batch)), needs_orjson(rendered))
    payloads = render_events(rendered)
    keep = pc.invert(slow)
    slow_rows = pc.indices_nonzero(slow).to_pylist()
    if slow_rows:
        keep, payloads = _encode_slow_rows(batch, slow_rows, expired, keep, payloads, prepared,
                                           id_suffix)
    kept = batch.filter(keep)
    if kept.num_rows == 0:
        return prepared
    payloads = payloads.filter(keep)
    sha256 = hashlib.sha256
    digests = pa.array(
        [sha256(p).hexdigest() for p in payloads.cast(pa.binary()).to_pylist()], pa.string()
    )
    events = Events(kept.column("event_id"), kept.column("event"), kept.column("event_time"),
                    kept.column("experiment_cell"), payloads, digests)
    keys = pc.binary_join_element_wise(
        kept.column("event_source"), kept.column("event_source_id"), "\x1f"
    ).dictionary_encode()
    for code, key in enumerate(keys.dictionary.to_pylist()):
        source, source_id = key.split("\x1f", 1)
        if len(keys.dictionary) == 1:
            prepared.groups[(source, source_id)] = events
        else:
            prepared.groups[(source, source_id)] = events.filter(pc.equal(keys.indices, code))
    return prepared


def _encode_slow_rows(
    batch: pa.RecordBatch,
    rows: list[int],
    expired: pa.Array,
    keep: pa.Array,
    payloads: pa.Array,
    prepared: Prepared,
    id_suffix: str | None = None,
) -> tuple[pa.Array, pa.Array]:
    """Sort the flagged rows into expired, invalid and sendable ones (encoded with orjson);
    returns the updated keep mask and payloads."""
    names = batch.schema.names
    subset = batch.take(pa.array(rows, pa.int64())).to_pylist()
    is_expired = expired.take(pa.array(rows, pa.int64())).to_pylist()
    sendable: list[int] = []
    encoded: list[str] = []
    for index, row, old in zip(rows, subset, is_expired, strict=True):
        row = {name: row.get(name) for name in names}
        if old:
            prepared.expired.append(skipped_row(row, "event is older than the maximum age"))
            continue
        reason = invalid_reason(row)
        if reason is not None:
            prepared.invalid.append(skipped_row(row, reason))
            continue
        values = [row.get(c) for c in EVENT_COLUMNS]
        if id_suffix:
            values[EVENT_COLUMNS.index("event_id")] += id_suffix
        sendable.append(index)
        encoded.append(orjson.dumps(build_event(*values)).decode())
    if not sendable:
        return keep, payloads
    flags = [False] * batch.num_rows
    for index in sendable:
        flags[index] = True
    mask_array = pa.array(flags, pa.bool_())
    keep = pc.or_(keep, mask_array)
    payloads = pc.replace_with_mask(payloads, mask_array, pa.array(encoded, pa.string()))
    return keep, payloads


def skipped_row(row: dict[str, Any], reason: str) -> Skipped:
    return Skipped(
        row.get("event_source") or "",
        row.get("event_source_id") or "",
        row.get("event_id"),  # type: ignore[arg-type]  # null ids stay null in the receipt
        row.get("event"),  # type: ignore[arg-type]
        row.get("event_time"),  # type: ignore[arg-type]
        row.get("experiment_cell"),
        reason,
    )
