"""Classification of API answers: the table of the shared contract doc, case by case."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from tiktok_sender.classify import (
    Response,
    Verdict,
    classify,
    event_indexes,
    retry_after_seconds,
)


def api(code: int, message: str = "", status: int = 200, retry_after: str | None = None) -> Response:
    body = orjson.dumps({"code": code, "message": message, "request_id": "r1", "data": {}})
    return Response(status, body, retry_after)


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (0, Verdict.DELIVERED),
        (20001, Verdict.DELIVERED),
        (40050, Verdict.DELIVERED),
        (40000, Verdict.REJECT),
        (40002, Verdict.REJECT),
        (40062, Verdict.REJECT),
        (40061, Verdict.SPLIT),
        (40001, Verdict.FATAL_AUTH),
        (40102, Verdict.FATAL_AUTH),
        (40104, Verdict.FATAL_AUTH),
        (40105, Verdict.FATAL_AUTH),
        (40006, Verdict.FATAL_CONFIG),
        (40051, Verdict.FATAL_CONFIG),
        (40100, Verdict.RETRY),
        (40132, Verdict.RETRY),
        (61000, Verdict.RETRY),
        (50000, Verdict.RETRY),
        (50002, Verdict.RETRY),
        (51234, Verdict.RETRY),
        (60001, Verdict.RETRY),
        (49999, Verdict.RETRY),  # unknown: bounded retries, the events stay pending
    ],
)
def test_api_codes(code: int, verdict: Verdict) -> None:
    result = classify(api(code, "msg"))
    assert result.verdict is verdict
    assert (result.http_status, result.api_code, result.request_id) == (200, code, "r1")


def test_http_errors_without_api_code() -> None:
    assert classify(Response(503, b"<html>gateway</html>")).verdict is Verdict.RETRY
    assert classify(Response(502, b"")).verdict is Verdict.RETRY
    assert classify(Response(200, b"not json")).verdict is Verdict.RETRY
    assert classify(Response(200, b'{"code": "0"}')).verdict is Verdict.RETRY
    assert classify(Response(401, b"")).verdict is Verdict.FATAL_AUTH
    assert classify(Response(403, b"forbidden")).verdict is Verdict.FATAL_AUTH
    assert classify(Response(404, b"no")).verdict is Verdict.FATAL_CONFIG
    assert classify(Response(413, b"too big")).verdict is Verdict.SPLIT
    assert "gateway" in classify(Response(503, b"<html>gateway</html>")).message


def test_429_and_5xx_with_a_json_body_are_retried() -> None:
    result = classify(api(0, status=429, retry_after="7"))
    assert result.verdict is Verdict.RETRY and result.retry_after == 7.0
    assert classify(api(0, status=500)).verdict is Verdict.RETRY


def test_transport_errors_are_retried() -> None:
    result = classify(Response(None, error="timeout (ReadTimeout)"))
    assert result.verdict is Verdict.RETRY and result.http_status is None
    assert result.message == "timeout (ReadTimeout)"


def test_bad_event_indexes_from_the_message() -> None:
    result = classify(api(40002, "data.3.event_id: not a valid string"))
    assert result.event_indexes == (3,)
    assert event_indexes("data[12].user.email: bad; data.0.event: bad") == (0, 12)
    assert event_indexes("Invalid parameters") == ()
    assert event_indexes("metadata.3 is fine") == ()


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("-3") == 0.0
