"""Classification of API answers: the table of the shared contract doc, case by case."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from tiktok_sender.api.classify import (
    EventProblem,
    Verdict,
    classify,
    event_indexes,
    event_problems,
    retry_after_seconds,
)
from tiktok_sender.api.client import Response


def api(code: int, message: str = "", status: int = 200, retry_after: str | None = None) -> Response:
    body = orjson.dumps({"code": code, "message": message, "request_id": "r1", "data": {}})
    return Response(status, body, retry_after)


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (0, Verdict.DELIVERED),
        (20001, Verdict.DELIVERED),  # naming no event: delivered, the message kept
        (40050, Verdict.DELIVERED),
        (40000, Verdict.REFUSE),  # naming no event: a bad event or the source, to be found
        (40002, Verdict.REFUSE),
        (40062, Verdict.REFUSE),
        (40061, Verdict.SPLIT),
        (40001, Verdict.STOP_SOURCE),
        (40102, Verdict.STOP_AUTH),
        (40104, Verdict.STOP_AUTH),
        (40105, Verdict.STOP_AUTH),
        (40006, Verdict.STOP_CONFIG),
        (40051, Verdict.STOP_CONFIG),
        (40100, Verdict.THROTTLE),
        (40132, Verdict.THROTTLE),
        (61000, Verdict.THROTTLE),
        (50000, Verdict.RETRY),
        (50002, Verdict.RETRY),
        (51234, Verdict.RETRY),
        (60001, Verdict.RETRY),
        (49999, Verdict.RETRY),  # unknown: bounded retries, then split (policy)
    ],
)
def test_api_codes(code: int, verdict: Verdict) -> None:
    result = classify(api(code, "msg"))
    assert result.verdict is verdict
    assert (result.http_status, result.api_code, result.request_id) == (200, code, "r1")


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (503, b"<html>gateway</html>", Verdict.RETRY),
        (502, b"", Verdict.RETRY),
        (408, b"", Verdict.RETRY),
        (200, b"not json", Verdict.RETRY),
        (200, b'{"code": "0"}', Verdict.RETRY),
        (429, b"", Verdict.THROTTLE),
        (401, b"", Verdict.STOP_AUTH),
        (403, b"forbidden", Verdict.STOP_AUTH),
        (404, b"no", Verdict.STOP_CONFIG),
        (407, b"proxy auth", Verdict.STOP_CONFIG),
        (301, b"", Verdict.STOP_CONFIG),
        (302, b'{"code": 0, "message": "OK"}', Verdict.STOP_CONFIG),
        (413, b"too big", Verdict.SPLIT),
        (400, b"<html>blocked by WAF</html>", Verdict.REFUSE),
        (422, b"", Verdict.REFUSE),
    ],
)
def test_http_answers_without_a_usable_code(status: int, body: bytes, verdict: Verdict) -> None:
    assert classify(Response(status, body)).verdict is verdict


@pytest.mark.parametrize("status", [400, 403, 404, 409, 302, 429, 500, 503])
@pytest.mark.parametrize("code", [0, 20001, 40050])
def test_a_delivered_code_outside_a_2xx_answer_is_never_delivered(status: int, code: int) -> None:
    result = classify(api(code, "OK", status=status))
    assert result.verdict not in (Verdict.DELIVERED, Verdict.PARTIAL)
    assert f"HTTP {status}" in result.message


def test_an_error_code_under_a_4xx_is_read_by_the_code() -> None:
    assert classify(api(40002, "data.2.event: bad", status=400)).event_indexes == (2,)
    assert classify(api(40105, "token", status=401)).verdict is Verdict.STOP_AUTH


def test_429_and_5xx_with_a_json_body_are_transient() -> None:
    result = classify(api(0, status=429, retry_after="7"))
    assert result.verdict is Verdict.THROTTLE and result.retry_after == 7.0
    assert classify(api(0, status=500)).verdict is Verdict.RETRY
    assert classify(api(40002, "x", status=503)).verdict is Verdict.RETRY


def test_a_40002_saying_no_permission_stops_the_source() -> None:
    message = "No permission to operate pixel code: ABC. You must be an admin or operator"
    assert classify(api(40002, message)).verdict is Verdict.STOP_SOURCE


def test_partial_success_names_its_events() -> None:
    data = {"failed_events": [{"index": 2, "message": "bad email"},
                              {"event_id": "e7", "error": "too old"}, {"note": "no key"}]}
    body = orjson.dumps({"code": 20001, "message": "Partial success", "data": data})
    result = classify(Response(200, body))
    assert result.verdict is Verdict.PARTIAL
    assert result.problems == (EventProblem(2, None, "bad email"), EventProblem(None, "e7", "too old"))
    by_message = classify(api(20001, "data.4.event_time: too old"))
    assert by_message.verdict is Verdict.PARTIAL and by_message.problems[0].index == 4
    opaque = classify(api(20001, "Partial success"))
    assert opaque.verdict is Verdict.DELIVERED and "partial success naming no event" in opaque.message
    assert event_problems(["not", "a", "dict"]) == ()


def test_transport_errors_are_retried() -> None:
    result = classify(Response(None, error="timeout (ReadTimeout)"))  # a transport error
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
