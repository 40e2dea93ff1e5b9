"""Columnar rendering of event JSON: one Arrow string per event, built with Arrow compute.

`render_events` gives, for every row of a chunk of outbox rows, the same bytes as
`orjson.dumps(build_event(...))`, for the rows `needs_orjson` does not flag: rows whose free-text
columns hold a character JSON must escape, and values Arrow prints with an exponent (orjson and
Arrow disagree on the exponent's form). The caller encodes the flagged rows (rare) one by one
with orjson. No Python code runs per row here.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

# Free-text columns that reach the JSON. The others are checked before rendering (hex digests,
# event names, currencies) or are numbers.
FREE_TEXT = ("event_id", "ttclid", "ttp", "ip", "user_agent", "page_url", "order_id", "city", "state",
             "country", "locale")
_NEEDS_ESCAPING = r'["\\\x00-\x1f]'
_NULL = pa.scalar(None, pa.string())

# (JSON key, outbox column, omitted when empty as well as when null)
USER_FIELDS = (
    ("email", "email_sha256", False),
    ("phone", "phone_sha256", False),
    ("external_id", "external_id_sha256", False),
    ("ttclid", "ttclid", True),
    ("ttp", "ttp", True),
    ("ip", "ip", True),
    ("user_agent", "user_agent", True),
    ("idfa", "idfa", True),
    ("idfv", "idfv", True),
    ("gaid", "gaid", True),
    ("att_status", "att_status", True),
    ("first_name", "first_name_sha256", False),
    ("last_name", "last_name_sha256", False),
    ("city", "city", True),
    ("state", "state", True),
    ("country", "country", True),
    ("zip_code", "zip_code_sha256", False),
    ("locale", "locale", True),
)


def _text(batch: pa.RecordBatch, name: str) -> pa.Array:
    column = batch.column(name)
    return column if column.type == pa.string() else column.cast(pa.string())


def needs_orjson(batch: pa.RecordBatch) -> pa.Array:
    """True where `render_events` would not match orjson: a free-text column holds a character
    JSON must escape (`"`, `\\`, controls), or `value` is printed with an exponent."""
    joined = pc.binary_join_element_wise(
        *(pc.fill_null(_text(batch, c), "") for c in FREE_TEXT), "", null_handling="replace"
    )
    escaping = pc.match_substring_regex(joined, _NEEDS_ESCAPING)
    exponent = pc.fill_null(pc.or_kleene(
        pc.match_substring(pc.cast(batch.column("value"), pa.string()), "e"),
        pc.match_substring(pc.cast(batch.column("properties_predicted_ltv"), pa.string()), "e")),
        False)
    return pc.or_(escaping, exponent)


def _number(column: pa.Array) -> pa.Array:
    """Doubles as orjson prints them (no exponent): a whole number keeps `.0`."""
    text = pc.cast(column, pa.string())
    return pc.if_else(pc.match_substring(text, "."), text,
                      pc.binary_join_element_wise(text, ".0", ""))


def _member(key: str, value: pa.Array, *, quoted: bool = True) -> pa.Array:
    """`,"key":"value"` (or `,"key":value`), an empty string where `value` is null.

    Members carry their leading comma and the object drops the first one: Arrow's
    `null_handling="skip"` join loses the rows when every input is entirely null."""
    if quoted:
        member = pc.binary_join_element_wise(f',"{key}":"', value, '"', "")
    else:
        member = pc.binary_join_element_wise(f',"{key}":', value, "")
    return pc.fill_null(member, "")


def _present(column: pa.Array, omit_empty: bool) -> pa.Array:
    """`column` with empty strings turned into nulls when `omit_empty`."""
    if not omit_empty:
        return column
    return pc.if_else(pc.equal(column, ""), _NULL, column)


def _braced(members: Sequence[pa.Array]) -> pa.Array:
    """`{m1,m2,...}` of members built by `_member`."""
    joined = pc.binary_join_element_wise(*members, "")
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")


def _object(key: str, members: Sequence[pa.Array]) -> pa.Array:
    """`,"key":{m1,m2,...}`; an empty string where every member is."""
    joined = pc.binary_join_element_wise(*members, "")
    wrapped = pc.binary_join_element_wise(
        f',"{key}":{{', pc.utf8_slice_codeunits(joined, 1), "}", ""
    )
    return pc.if_else(pc.equal(joined, ""), "", wrapped)


def render_events(batch: pa.RecordBatch) -> pa.Array:
    """The v1.3 event object of every row as a JSON string (see the module docstring)."""
    user = [
        _member(key, _present(_text(batch, column), omit_empty))
        for key, column, omit_empty in USER_FIELDS
    ]
    value = batch.column("value")
    properties = [
        _member("value", _number(value), quoted=False),
        _member("currency", _present(_text(batch, "currency"), True)),
        _member("order_id", _present(_text(batch, "order_id"), True)),
        _member("predicted_ltv", _number(batch.column("properties_predicted_ltv")), quoted=False),
    ]
    page_url = _present(_text(batch, "page_url"), True)
    page = pc.fill_null(pc.binary_join_element_wise(',"page":{"url":"', page_url, '"}', ""), "")
    # sent only when true (a missing flag is TikTok's default, false)
    limited = pc.if_else(pc.fill_null(batch.column("limited_data_use"), False),
                         ',"limited_data_use":true', "")
    members = [
        _member("event", _text(batch, "event")),
        _member("event_time", pc.cast(batch.column("event_time"), pa.string()), quoted=False),
        _member("event_id", _text(batch, "event_id")),
        _object("user", user),
        _object("properties", properties),
        page,
        limited,
    ]
    return _braced(members)
