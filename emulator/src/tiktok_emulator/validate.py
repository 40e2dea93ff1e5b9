"""The emulator's checks of a track request body, answering like TikTok: a code and a message
that names the first offending item (`data.3.event_id: not a valid string`)."""

from __future__ import annotations

import math
from typing import Any

from tiktok_sender.api import contract as c

HASHED_USER_KEYS = ("email", "phone", "external_id", "first_name", "last_name", "zip_code")
PLAIN_USER_KEYS = ("ttclid", "ttp", "ip", "user_agent", "locale", "city", "state", "country")


class Invalid(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _fail(path: str, problem: str, code: int = c.CODE_PARAM_ERROR) -> Invalid:
    return Invalid(code, f"{path}: {problem}")


def validate_body(body: Any, *, sample: bool = False) -> list[dict[str, Any]]:
    """The events of a valid body; raises Invalid on the first problem. With `sample` (the
    emulator's lean mode) only the envelope and the first event are checked."""
    if not isinstance(body, dict):
        raise Invalid(c.CODE_INVALID_PARAMS, "request body must be a JSON object")
    source = body.get("event_source")
    if source not in c.EVENT_SOURCES:
        raise _fail("event_source", "must be one of web, app, offline, crm")
    source_id = body.get("event_source_id")
    if not isinstance(source_id, str) or not source_id:
        raise _fail("event_source_id", "required, a non-empty string")
    if "test_event_code" in body and not isinstance(body["test_event_code"], str):
        raise _fail("test_event_code", "not a valid string")
    data = body.get("data")
    if not isinstance(data, list):
        raise _fail("data", "required, an array of events")
    if not 1 <= len(data) <= c.MAX_BATCH_SIZE:
        raise _fail("data", f"batch size must be between 1 and {c.MAX_BATCH_SIZE}",
                    c.CODE_INVALID_BATCH_SIZE)
    for index, event in enumerate(data[:1] if sample else data):
        validate_event(source, event, f"data.{index}")
    return data


def _no_nulls(value: Any, path: str) -> None:
    if value is None:
        raise _fail(path, "null is not allowed; omit the key")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_nulls(item, f"{path}.{i}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_event(source: str, event: Any, path: str) -> None:
    if not isinstance(event, dict):
        raise _fail(path, "must be an object")
    _no_nulls(event, path)
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise _fail(f"{path}.event", "required, a non-empty string")
    if not c.is_valid_event_name(source, name):
        raise _fail(f"{path}.event", f"not a valid event name for event_source {source}")
    event_time = event.get("event_time")
    if not _is_int(event_time) or event_time <= 0:
        raise _fail(f"{path}.event_time", "must be an integer (Unix seconds)")
    if "event_id" in event and (not isinstance(event["event_id"], str) or not event["event_id"]):
        raise _fail(f"{path}.event_id", "not a valid string")
    _validate_user(event.get("user"), f"{path}.user")
    if "limited_data_use" in event and not isinstance(event["limited_data_use"], bool):
        raise _fail(f"{path}.limited_data_use", "must be a boolean")
    _validate_properties(event.get("properties"), f"{path}.properties")
    page = event.get("page")
    if page is not None:
        if not isinstance(page, dict):
            raise _fail(f"{path}.page", "must be an object")
        for key in ("url", "referrer"):
            if key in page and not isinstance(page[key], str):
                raise _fail(f"{path}.page.{key}", "not a valid string")


def _validate_user(user: Any, path: str) -> None:
    if user is None:
        return
    if not isinstance(user, dict):
        raise _fail(path, "must be an object")
    for key in HASHED_USER_KEYS:
        if key not in user:
            continue
        values = user[key] if isinstance(user[key], list) else [user[key]]
        for value in values:
            if not isinstance(value, str):
                raise _fail(f"{path}.{key}", "not a valid string")
            if not c.is_sha256_hex(value):
                if ("@" in value or value.lstrip("+").replace(" ", "").isdigit()
                        or key in ("first_name", "last_name", "zip_code")):
                    raise _fail(f"{path}.{key}", "PII must be SHA-256 hashed", c.CODE_PII_NOT_HASHED)
                raise _fail(f"{path}.{key}", "must be a SHA-256 hex digest")
    for key in PLAIN_USER_KEYS:
        if key in user and not isinstance(user[key], str):
            raise _fail(f"{path}.{key}", "not a valid string")
    for key, pattern in c.DEVICE_IDS.items():
        if key in user and (not isinstance(user[key], str) or pattern.fullmatch(user[key]) is None):
            raise _fail(f"{path}.{key}", "not a valid device id")
    if "att_status" in user and user["att_status"] not in c.ATT_STATUSES:
        raise _fail(f"{path}.att_status", "not a valid ATT status")


def _validate_properties(properties: Any, path: str) -> None:
    if properties is None:
        return
    if not isinstance(properties, dict):
        raise _fail(path, "must be an object")
    for key in ("value", "predicted_ltv"):
        if key in properties:
            value = properties[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise _fail(f"{path}.{key}", "must be a number")
    contents = properties.get("contents")
    if contents is not None:
        if not isinstance(contents, list):
            raise _fail(f"{path}.contents", "must be an array")
        for index, item in enumerate(contents):
            if not isinstance(item, dict) or not isinstance(item.get("content_id"), str):
                raise _fail(f"{path}.contents.{index}.content_id", "not a valid string")
            if "quantity" in item and not _is_int(item["quantity"]):
                raise _fail(f"{path}.contents.{index}.quantity", "must be an integer")
            price = item.get("price")
            if price is not None and (isinstance(price, bool) or not isinstance(price, int | float)):
                raise _fail(f"{path}.contents.{index}.price", "must be a number")
    if "content_type" in properties and properties["content_type"] not in ("product", "product_group"):
        raise _fail(f"{path}.content_type", "must be product or product_group")
    if "num_items" in properties and not _is_int(properties["num_items"]):
        raise _fail(f"{path}.num_items", "must be an integer")
    if "currency" in properties and properties["currency"] not in c.CURRENCIES:
        raise _fail(f"{path}.currency", "not a supported currency")
    for key in ("order_id", "content_type", "query", "description", "shop_id"):
        if key in properties and not isinstance(properties[key], str):
            raise _fail(f"{path}.{key}", "not a valid string")
