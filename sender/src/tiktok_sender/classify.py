"""The one place that decides what an API answer means for the events of a request.

Input: the HTTP status, headers and body of a response, or the transport error instead of one.
Output: a `Classification` whose `verdict` the delivery loop acts on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

import orjson

from tiktok_sender import contract as c


class Verdict(Enum):
    DELIVERED = "delivered"  # the events are accepted
    RETRY = "retry"  # transient: back off and send the same events again
    REJECT = "reject"  # permanent for some events: isolate them, resend the others
    SPLIT = "split"  # the batch is too large: send it in halves
    FATAL_AUTH = "fatal_auth"  # token or permission problem: stop the run
    FATAL_CONFIG = "fatal_config"  # endpoint or API version problem: stop the run


DELIVERED_CODES = frozenset({c.CODE_OK, c.CODE_PARTIAL_OK, c.CODE_DUPLICATED_REQUEST})
RETRY_CODES = frozenset(
    {
        c.CODE_REQUEST_TOO_FREQUENT,
        c.CODE_REQUEST_FREQUENCY_LIMITED,
        c.CODE_TOO_MANY_REQUESTS_BL,
        c.CODE_SYS_ERROR,
        c.CODE_SYS_TIMEOUT,
        c.CODE_MAINTENANCE,
    }
)
REJECT_CODES = frozenset({c.CODE_INVALID_PARAMS, c.CODE_PARAM_ERROR, c.CODE_PII_NOT_HASHED})
AUTH_CODES = frozenset(
    {
        c.CODE_PERMISSION_ERROR,
        c.CODE_ACCESS_TOKEN_EXPIRE,
        c.CODE_EMPTY_ACCESS_TOKEN,
        c.CODE_INVALID_ACCESS_TOKEN,
    }
)
# Version errors would reject every event of every batch: a wrong URL, not bad events.
CONFIG_CODES = frozenset({c.CODE_VERSION_ERROR, c.CODE_INVALID_API_VERSION})

SNIPPET_BYTES = 2000
_EVENT_INDEX = re.compile(r"\bdata(?:\.(\d+)|\[(\d+)\])")


@dataclass(frozen=True)
class Response:
    """What came back over HTTP, or the transport error instead (`status` is None then)."""

    status: int | None
    body: bytes = b""
    retry_after: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    http_status: int | None
    api_code: int | None
    message: str
    request_id: str | None = None
    retry_after: float | None = None
    event_indexes: tuple[int, ...] = ()


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
    if not isinstance(code, int) or isinstance(code, bool):
        return _classify_http(status, response.body, retry_after)
    raw_message = parsed.get("message") if isinstance(parsed, dict) else None
    message = raw_message if isinstance(raw_message, str) else ""
    request_id = parsed.get("request_id")
    request_id = request_id if isinstance(request_id, str) else None

    def result(verdict: Verdict, indexes: tuple[int, ...] = ()) -> Classification:
        return Classification(verdict, status, code, message, request_id, retry_after, indexes)

    if status == 429 or status >= 500:
        return result(Verdict.RETRY)
    if code in DELIVERED_CODES:
        return result(Verdict.DELIVERED)
    if code in RETRY_CODES or 51000 <= code <= 51999:
        return result(Verdict.RETRY)
    if code in REJECT_CODES:
        return result(Verdict.REJECT, event_indexes(message))
    if code == c.CODE_INVALID_BATCH_SIZE:
        return result(Verdict.SPLIT)
    if code in AUTH_CODES:
        return result(Verdict.FATAL_AUTH)
    if code in CONFIG_CODES:
        return result(Verdict.FATAL_CONFIG)
    # An unknown code: retry a bounded number of times; the events stay `failed`, never lost.
    return result(Verdict.RETRY)


def _classify_http(status: int, body: bytes, retry_after: float | None) -> Classification:
    """A response without a TikTok `code` (gateway pages, proxies, a wrong URL)."""
    # Longer than anything downstream keeps (500 characters), so the cut never splits a secret
    # that the delivery loop redacts before truncating.
    snippet = body[:SNIPPET_BYTES].decode("utf-8", "replace").strip()
    message = f"HTTP {status} without an API code" + (f": {snippet}" if snippet else "")
    if status in (401, 403):
        return Classification(Verdict.FATAL_AUTH, status, None, message, None, retry_after)
    if status in (404, 405, 410):
        return Classification(Verdict.FATAL_CONFIG, status, None, message, None, retry_after)
    if status == 413:
        return Classification(Verdict.SPLIT, status, None, message, None, retry_after)
    return Classification(Verdict.RETRY, status, None, message, None, retry_after)
