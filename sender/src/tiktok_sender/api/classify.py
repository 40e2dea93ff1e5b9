"""What an API answer says about the events of a request, read from the answer alone.

Input: the HTTP status, headers and body of a response (`client.Response`), or the transport
error instead of one. Output: a `Classification`, whose `verdict` the delivery policy
(`delivery/policy.py`) turns into receipts and follow-up requests.

Two rules hold everywhere:
- `delivered` needs both a 2xx status and a delivered API code. A body saying `{"code": 0}` under
  another status (a proxy, a WAF, a wrong URL) is read by its HTTP status.
- A non-2xx answer that carries a TikTok error code is read by the code, which is more precise,
  except 429 and 5xx, which are transient whatever the body says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

import orjson

from tiktok_sender.api import contract as c
from tiktok_sender.api.client import Response


class Verdict(Enum):
    DELIVERED = "delivered"  # every event of the request is accepted
    PARTIAL = "partial"  # accepted except the events named in `problems` (20001)
    RETRY = "retry"  # transient: back off and send the same events again
    THROTTLE = "throttle"  # rate limited: every worker pauses, then the same events again
    REJECT = "reject"  # refused for the events named in `event_indexes`; resend the others
    REFUSE = "refuse"  # refused, naming no event: a bad event, or the whole event source
    SPLIT = "split"  # the request is too large: send it in halves
    STOP_SOURCE = "stop_source"  # the token may not use this event source (40001)
    STOP_AUTH = "stop_auth"  # the token is refused: stop the run
    STOP_CONFIG = "stop_config"  # endpoint or API version is wrong: stop the run


DELIVERED_CODES = frozenset({c.CODE_OK, c.CODE_DUPLICATED_REQUEST})
THROTTLE_CODES = frozenset(
    {c.CODE_REQUEST_TOO_FREQUENT, c.CODE_REQUEST_FREQUENCY_LIMITED, c.CODE_TOO_MANY_REQUESTS_BL}
)
RETRY_CODES = frozenset({c.CODE_SYS_ERROR, c.CODE_SYS_TIMEOUT, c.CODE_MAINTENANCE})
REJECT_CODES = frozenset({c.CODE_INVALID_PARAMS, c.CODE_PARAM_ERROR, c.CODE_PII_NOT_HASHED})
TOKEN_CODES = frozenset(
    {c.CODE_ACCESS_TOKEN_EXPIRE, c.CODE_EMPTY_ACCESS_TOKEN, c.CODE_INVALID_ACCESS_TOKEN}
)
# Codes that mean success in a 2xx answer only; under another status the HTTP status decides.
SUCCESS_CODES = DELIVERED_CODES | {c.CODE_PARTIAL_OK}
# Version errors would refuse every event of every request: a wrong URL, not bad events.
CONFIG_CODES = frozenset({c.CODE_VERSION_ERROR, c.CODE_INVALID_API_VERSION})
# Keys of `data` under which a 20001 answer may list the events it did not accept. No TikTok
# document shows the shape for event/track, so the reader accepts the plausible ones, each item
# naming the event by `index` (into the request's `data`) or by `event_id`.
PROBLEM_KEYS = ("failed_events", "failed_event_list", "errors", "error_events", "invalid_events",
                "failed", "partial_failure")
PROBLEM_TEXT_KEYS = ("message", "msg", "error", "reason", "error_message")

# A 40002 whose message says the token may not use the pixel is a permission error (RudderStack's
# documentation reports it under 40002; TikTok's code table has 40001 for it).
PERMISSION_MESSAGE = re.compile(r"no permission to operate", re.IGNORECASE)

SNIPPET_BYTES = 2000
_EVENT_INDEX = re.compile(r"\bdata(?:\.(\d+)|\[(\d+)\])")


@dataclass(frozen=True)
class EventProblem:
    """One event a 20001 answer says was not accepted, by index into `data` or by event_id."""

    index: int | None
    event_id: str | None
    message: str


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    http_status: int | None
    api_code: int | None
    message: str
    request_id: str | None = None
    retry_after: float | None = None
    event_indexes: tuple[int, ...] = ()
    problems: tuple[EventProblem, ...] = ()

    @property
    def transient(self) -> bool:
        """A known transient failure (no answer, a 5xx, a system-error code), as opposed to an
        unknown code: what it says about the API, not about the events."""
        code = self.api_code
        return (self.http_status is None or self.http_status >= 500 or code is None
                or code in RETRY_CODES or 51000 <= code <= 51999)

    @property
    def signature(self) -> tuple[int | None, int | None, str]:
        """What two answers must share to be "the same refusal"."""
        return (self.http_status, self.api_code, self.message)


def event_indexes(message: str) -> tuple[int, ...]:
    """Indexes into `data` named by an API error message (`data.3.event_id: ...`)."""
    found = {int(a or b) for a, b in _EVENT_INDEX.findall(message)}
    return tuple(sorted(found))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def event_problems(data: Any) -> tuple[EventProblem, ...]:
    """The per-event problems listed in a 20001 answer's `data`, or () when it names none."""
    if not isinstance(data, dict):
        return ()
    found: list[EventProblem] = []
    for key in PROBLEM_KEYS:
        items = data.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            index = item.get("index")
            index = index if isinstance(index, int) and not isinstance(index, bool) else None
            event_id = item.get("event_id")
            event_id = event_id if isinstance(event_id, str) and event_id else None
            if index is None and event_id is None:
                continue
            text = next((str(item[k]) for k in PROBLEM_TEXT_KEYS if item.get(k)), "")
            found.append(EventProblem(index, event_id, text))
    return tuple(found)


def classify(response: Response) -> Classification:
    status = response.status
    retry_after = retry_after_seconds(response.retry_after)
    if status is None:
        return Classification(Verdict.RETRY, None, None, response.error or "no response")
    try:
        parsed = orjson.loads(response.body) if response.body else None
    except orjson.JSONDecodeError:
        parsed = None
    code = parsed.get("code") if isinstance(parsed, dict) else None
    ok_status = 200 <= status < 300
    if (
        not isinstance(code, int)
        or isinstance(code, bool)
        or (not ok_status and code in SUCCESS_CODES)
    ):
        return _classify_http(status, response.body, retry_after, code)
    assert isinstance(parsed, dict)
    raw_message = parsed.get("message")
    message = raw_message if isinstance(raw_message, str) else ""
    request_id = parsed.get("request_id")
    request_id = request_id if isinstance(request_id, str) else None

    def result(verdict: Verdict, **extra: Any) -> Classification:
        return Classification(verdict, status, code, message, request_id, retry_after, **extra)

    if status == 429 or code in THROTTLE_CODES:
        return result(Verdict.THROTTLE)
    if status >= 500 or code in RETRY_CODES or 51000 <= code <= 51999:
        return result(Verdict.RETRY)  # Classification.transient says the same
    if 300 <= status < 400:
        return result(Verdict.STOP_CONFIG)
    if code in DELIVERED_CODES:
        return result(Verdict.DELIVERED)
    if code == c.CODE_PARTIAL_OK:
        problems = event_problems(parsed.get("data"))
        if not problems:
            problems = tuple(EventProblem(i, None, message) for i in event_indexes(message))
        if not problems:
            # No document shows what 20001 carries for event/track: keep what it said.
            data = orjson.dumps(parsed.get("data")).decode()[:300]
            message = f"partial success naming no event: {message} (data: {data})"
        return result(Verdict.PARTIAL if problems else Verdict.DELIVERED, problems=problems)
    if code == c.CODE_PERMISSION_ERROR or (
        code in REJECT_CODES and PERMISSION_MESSAGE.search(message)
    ):
        return result(Verdict.STOP_SOURCE)
    if code in REJECT_CODES:
        indexes = event_indexes(message)
        return result(Verdict.REJECT if indexes else Verdict.REFUSE, event_indexes=indexes)
    if code == c.CODE_INVALID_BATCH_SIZE:
        return result(Verdict.SPLIT)
    if code in TOKEN_CODES:
        return result(Verdict.STOP_AUTH)
    if code in CONFIG_CODES:
        return result(Verdict.STOP_CONFIG)
    # An unknown code: retried a bounded number of times, then split like a refusal, so that an
    # event that draws it costs only itself.
    return result(Verdict.RETRY)


def _classify_http(
    status: int, body: bytes, retry_after: float | None, code: Any = None
) -> Classification:
    """An answer read by its HTTP status: no TikTok `code` (gateway pages, proxies, a wrong URL),
    or a delivered code under a status that is not 2xx."""
    # Longer than anything downstream keeps (500 characters), so the cut never splits a secret
    # that the delivery loop redacts before truncating.
    snippet = body[:SNIPPET_BYTES].decode("utf-8", "replace").strip()
    what = "without an API code" if code is None else f"with code {code!r} outside a 2xx answer"
    message = f"HTTP {status} {what}" + (f": {snippet}" if snippet else "")
    api_code = code if isinstance(code, int) and not isinstance(code, bool) else None

    def result(verdict: Verdict) -> Classification:
        return Classification(verdict, status, api_code, message, None, retry_after)

    if status == 429:
        return result(Verdict.THROTTLE)
    if status >= 500 or status == 408 or 200 <= status < 300 or status < 200:
        return result(Verdict.RETRY)  # 2xx here: a body that is not the API's JSON
    if 300 <= status < 400 or status in (404, 405, 407, 410):  # 407: the proxy's own auth
        return result(Verdict.STOP_CONFIG)
    if status in (401, 403):
        return result(Verdict.STOP_AUTH)
    if status == 413:
        return result(Verdict.SPLIT)
    return result(Verdict.REFUSE)  # another 4xx: refused, naming no event
