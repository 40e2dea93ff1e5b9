"""Payload building: the exact v1.3 event shape, local validation, batching and bodies."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tiktok_emulator.validate import validate_body
from tiktok_sender.api.batch import Batch, Batcher, Event, Events, body
from tiktok_sender.api.payload import (
    EVENT_COLUMNS,
    _suspects,
    build_event,
    invalid_reason,
    prepare,
)
from tiktok_sender.tables.outbox import OUTBOX_COLUMNS, OUTBOX_SCHEMA

H = hashlib.sha256(b"x").hexdigest()
NOW = 1_760_000_000

SCHEMA = OUTBOX_SCHEMA
IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
GAID = IDFA.lower()


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {c: None for c in OUTBOX_COLUMNS}
    base.update(event_source="web", event_source_id="CPIXEL", event_id="e1", event="Purchase",
                event_time=NOW, experiment_cell="treatment")
    base.update(overrides)
    return base


def batch_of(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=SCHEMA)


def test_full_event_shape() -> None:
    event = build_event("CompletePayment", NOW, "ord-1", H, H, H, "clk", "ttp1", "1.2.3.4", "UA",
                        "https://x/y", 12.5, "EUR", "ord-1")
    assert event == {
        "event": "CompletePayment",
        "event_time": NOW,
        "event_id": "ord-1",
        "user": {"email": H, "phone": H, "external_id": H, "ttclid": "clk", "ttp": "ttp1",
                 "ip": "1.2.3.4", "user_agent": "UA"},
        "properties": {"value": 12.5, "currency": "EUR", "order_id": "ord-1"},
        "page": {"url": "https://x/y"},
    }


def test_app_keys_names_places_and_limited_data_use() -> None:
    """The keys TikTok's own destinations send besides email and phone: device ids and the ATT
    status (app), hashed names and zip code, plain city, state, country and locale, in
    render.USER_FIELDS order; limited_data_use only when true."""
    r = row(event_source="app", event="Subscribe", idfa=IDFA, idfv=IDFA, att_status="AUTHORIZED",
            first_name_sha256=H, last_name_sha256=H, zip_code_sha256=H, city="newyork", state="ny",
            country="us", locale="en-US", limited_data_use=True, value=59.99, currency="USD",
            properties_predicted_ltv=180.5)
    event = build_event(*(r[c] for c in EVENT_COLUMNS))
    assert list(event["user"]) == ["idfa", "idfv", "att_status", "first_name", "last_name", "city",
                                   "state", "country", "zip_code", "locale"]
    assert event["limited_data_use"] is True
    assert event["properties"] == {"value": 59.99, "currency": "USD", "predicted_ltv": 180.5}
    assert "limited_data_use" not in build_event(*(row(limited_data_use=False)[c] for c in EVENT_COLUMNS))
    prepared = prepare(batch_of([r]), expire_before=0)
    (sent,) = prepared.groups[("app", "CPIXEL")]
    assert sent.payload == orjson.dumps(event)
    validate_body({"event_source": "app", "event_source_id": "A", "data": [event]})


def test_bad_device_ids_and_att_status_are_rejected_locally() -> None:
    assert invalid_reason(row(idfa=IDFA.lower())) == "idfa is not a UUID in upper case nor a SHA-256"
    assert invalid_reason(row(gaid=IDFA)) == "gaid is not a UUID in lower case nor a SHA-256"
    assert invalid_reason(row(gaid=GAID, idfa=H)) is None
    assert invalid_reason(row(att_status="authorized")).startswith("att_status 'authorized' is not one of")
    assert invalid_reason(row(properties_predicted_ltv=-1.0)) == (
        "properties_predicted_ltv is not a finite number of 0 or more")
    assert invalid_reason(row(first_name_sha256="Linda")) == (
        "first_name_sha256 is not 64 lowercase hex characters (SHA-256)")
    flagged = _suspects(batch_of([row(idfa=IDFA.lower()), row(att_status="yes"), row(idfa=IDFA),
                                  row(first_name_sha256="linda")]))
    assert flagged == [True, True, False, True]


def test_contents_are_parsed_checked_and_sent_with_their_four_keys() -> None:
    """The outbox holds contents as JSON text (any engine's spelling, Spark's line position
    included); what is sent is each line's content_id, content_name, quantity and price."""
    text = ('[{"line":1,"price":57.63,"quantity":2,"content_name":"Denim \\"Jacket\\"",'
            '"content_id":"SKU-1002"},{"content_id":"SKU-7","quantity":1,"price":5}]')
    r = row(value=120.26, currency="USD", contents=text, content_type="product", num_items=3)
    prepared = prepare(batch_of([r]), expire_before=0)
    (sent,) = prepared.groups[("web", "CPIXEL")]
    event = orjson.loads(sent.payload)
    assert event["properties"] == {
        "value": 120.26, "currency": "USD", "content_type": "product",
        "contents": [{"content_id": "SKU-1002", "content_name": 'Denim "Jacket"', "quantity": 2,
                      "price": 57.63},
                     {"content_id": "SKU-7", "quantity": 1, "price": 5.0}],
        "num_items": 3}
    validate_body({"event_source": "web", "event_source_id": "P", "data": [event]})
    for bad, reason in [
        ("[]", "contents is not a non-empty JSON array"),
        ("{", "contents is not JSON"),
        ('[{"content_id":"A","quantity":0,"price":1}]', "contents line 1: quantity is not a whole number above 0"),
        ('[{"content_id":"A","quantity":1,"price":-1}]', "contents line 1: price is not a number of 0 or more"),
        ('[{"quantity":1,"price":1}]', "contents line 1: content_id is not a non-empty string"),
    ]:
        assert invalid_reason(row(contents=bad)) == reason
        assert len(prepare(batch_of([row(contents=bad)]), expire_before=0).invalid) == 1
    assert invalid_reason(row(content_type="sku")) == "content_type 'sku' is not product or product_group"


def test_nulls_and_empty_objects_are_left_out() -> None:
    assert build_event("Lead", NOW, "e1") == {"event": "Lead", "event_time": NOW, "event_id": "e1"}
    assert build_event("Lead", NOW, "e1", ttclid="", page_url="") == {
        "event": "Lead", "event_time": NOW, "event_id": "e1"}
    assert build_event("Lead", NOW, "e1", value=0.0) == {
        "event": "Lead", "event_time": NOW, "event_id": "e1", "properties": {"value": 0.0}}


def test_types_are_forced() -> None:
    event = build_event("Lead", NOW + 0, 12345)  # type: ignore[arg-type]
    assert event["event_id"] == "12345" and isinstance(event["event_time"], int)


def test_invalid_reasons() -> None:
    assert invalid_reason(row()) is None
    assert "email_sha256" in (invalid_reason(row(email_sha256="a@b.com")) or "")
    assert "phone_sha256" in (invalid_reason(row(phone_sha256=H.upper())) or "")
    assert "external_id_sha256" in (invalid_reason(row(external_id_sha256=H[:-1])) or "")
    assert "event_source" in (invalid_reason(row(event_source="email")) or "")
    assert "event_id" in (invalid_reason(row(event_id=None)) or "")
    assert "event_id" in (invalid_reason(row(event_id="")) or "")
    assert "currency" in (invalid_reason(row(currency="XXX")) or "")
    assert "value" in (invalid_reason(row(value=float("nan"))) or "")
    assert "not a standard" in (invalid_reason(row(event="Checkout")) or "")  # app-only name
    assert invalid_reason(row(event="Checkout", event_source="app")) is None
    assert invalid_reason(row(event="my_custom-event1")) is None
    assert invalid_reason(row(event="1bad")) is not None


def test_prepare_groups_encodes_and_hashes() -> None:
    rows = [row(event_id=f"e{i}", event_source_id="P1" if i % 2 else "P2", email_sha256=H,
                value=9.99, currency="USD") for i in range(6)]
    rows.append(row(event_id="old", event_time=NOW - 100))
    rows.append(row(event_id="bad", email_sha256="raw@example.com"))
    prepared = prepare(batch_of(rows), expire_before=NOW - 10)
    assert sorted(prepared.groups) == [("web", "P1"), ("web", "P2")]
    assert [e.event_id for e in prepared.groups[("web", "P1")]] == ["e1", "e3", "e5"]
    event = prepared.groups[("web", "P1")][0]
    assert orjson.loads(event.payload)["user"] == {"email": H}
    assert event.payload_sha256 == hashlib.sha256(event.payload).hexdigest()
    assert [s.event_id for s in prepared.expired] == ["old"]
    assert [s.event_id for s in prepared.invalid] == ["bad"]
    assert "email_sha256" in prepared.invalid[0].reason
    assert prepared.rows == 8


def test_body_is_the_exact_track_request() -> None:
    prepared = prepare(batch_of([row(event_id=f"e{i}") for i in range(3)]), expire_before=0)
    events = prepared.groups[("web", "CPIXEL")]
    parsed = orjson.loads(body(Batch("web", "CPIXEL", events), "TEST1"))
    assert list(parsed) == ["event_source", "event_source_id", "test_event_code", "data"]
    assert parsed["test_event_code"] == "TEST1" and len(parsed["data"]) == 3
    assert "test_event_code" not in orjson.loads(body(Batch("web", "CPIXEL", events), None))
    validate_body(parsed)


def test_batcher_caps_batches_per_group() -> None:
    def ev(i: int) -> Event:
        return Event(f"e{i}", "Lead", NOW, None, b"{}", "h")

    batcher = Batcher(2)
    out = list(batcher.add({("web", "A"): Events.of([ev(1), ev(2), ev(3)]),
                            ("app", "B"): Events.of([ev(4)])}))
    assert [(b.event_source_id, len(b)) for b in out] == [("A", 2)]
    assert [e.event_id for e in out[0].events] == ["e1", "e2"]
    out = list(batcher.add({("web", "A"): Events.of([ev(5)])})) + list(batcher.flush())
    assert sorted((b.event_source_id, len(b)) for b in out) == [("A", 2), ("B", 1)]
    assert [e.event_id for e in out[0].events] == ["e3", "e5"]
    whole = Batch("web", "A", Events.of([ev(i) for i in range(5)]), attempt=2)
    first, second = whole.part(range(2), retries=1, depth=1), whole.part(range(2, 5), retries=1, depth=1)
    assert (len(first), len(second), first.attempt, first.retries, first.depth) == (2, 3, 2, 1, 1)
    assert [e.event_id for e in second.events] == ["e2", "e3", "e4"]
    picked = whole.part((0, 3, 4), retries=0, depth=0)
    assert [e.event_id for e in picked.events] == ["e0", "e3", "e4"]


hashish = st.one_of(st.none(), st.just(H), st.just(H.upper()), st.text(max_size=70))
names = st.one_of(st.sampled_from(["Purchase", "Checkout", "Lead", "CompletePayment", "x", "",
                                   "InstallApp", "my-event", "9lives"]), st.text(max_size=60))


@settings(max_examples=300, deadline=None)
@given(
    source=st.one_of(st.none(), st.sampled_from(["web", "app", "offline", "crm", "WEB", ""])),
    source_id=st.one_of(st.none(), st.just(""), st.just("P")),
    event_id=st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=8)),
    event=st.one_of(st.none(), names),
    event_time=st.one_of(st.none(), st.integers(min_value=-5, max_value=2**40), st.just(0)),
    email=hashish, phone=hashish, external_id=hashish,
    value=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    currency=st.one_of(st.none(), st.sampled_from(["USD", "EUR", "usd", "XXX", ""])),
)
def test_vector_prefilter_flags_every_row_the_check_rejects(**values: Any) -> None:
    r = row(event_source=values["source"], event_source_id=values["source_id"],
            event_id=values["event_id"], event=values["event"], event_time=values["event_time"],
            email_sha256=values["email"], phone_sha256=values["phone"],
            external_id_sha256=values["external_id"], value=values["value"],
            currency=values["currency"])
    (flagged,) = _suspects(batch_of([r]))
    if invalid_reason(r) is not None:
        assert flagged
    prepared = prepare(batch_of([r]), expire_before=-1)
    sendable = sum(len(v) for v in prepared.groups.values())
    assert sendable == (1 if invalid_reason(r) is None else 0)
    if sendable:
        (event,) = next(iter(prepared.groups.values()))
        validate_body({"event_source": r["event_source"], "event_source_id": "P",
                       "data": [orjson.loads(event.payload)]})


texts = st.one_of(st.none(), st.just(""), st.text(max_size=30))


@settings(max_examples=300, deadline=None)
@given(
    event_id=st.text(min_size=1, max_size=12), ttclid=texts, ttp=texts, ip=texts, user_agent=texts,
    page_url=texts, order_id=texts, email=st.one_of(st.none(), st.just(H)),
    value=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False),
                    st.integers(-10**6, 10**6).map(float)),
    currency=st.one_of(st.none(), st.just("USD")),
    city=texts, state=texts, country=texts, locale=texts,
    idfa=st.one_of(st.none(), st.just(""), st.just(IDFA)), gaid=st.one_of(st.none(), st.just(GAID)),
    att_status=st.one_of(st.none(), st.just(""), st.sampled_from(["AUTHORIZED", "NOT_APPLICABLE"])),
    first_name=st.one_of(st.none(), st.just(H)), limited_data_use=st.one_of(st.none(), st.booleans()),
    predicted_ltv=st.one_of(st.none(), st.floats(0, 1e9), st.integers(0, 10**6).map(float)),
)
def test_columnar_payloads_are_the_bytes_orjson_makes(**values: Any) -> None:
    r = row(event_id=values["event_id"], ttclid=values["ttclid"], ttp=values["ttp"],
            ip=values["ip"], user_agent=values["user_agent"], page_url=values["page_url"],
            order_id=values["order_id"], email_sha256=values["email"], value=values["value"],
            currency=values["currency"], city=values["city"], state=values["state"],
            country=values["country"], locale=values["locale"], idfa=values["idfa"],
            gaid=values["gaid"], att_status=values["att_status"],
            first_name_sha256=values["first_name"], limited_data_use=values["limited_data_use"],
            properties_predicted_ltv=values["predicted_ltv"])
    prepared = prepare(batch_of([r]), expire_before=0)
    (event,) = prepared.groups[("web", "CPIXEL")]
    expected = orjson.dumps(build_event(*(r[c] for c in EVENT_COLUMNS)))
    assert event.payload == expected
    assert event.payload_sha256 == hashlib.sha256(expected).hexdigest()
