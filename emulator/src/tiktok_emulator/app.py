"""The emulated Events API: token check, validation, dedup, stored events, faults, admin routes.

Lean mode (`tiktok-emulator --lean`, used by the benchmark so that the emulator does not limit
what it measures): each request's envelope and first event are validated, not every event, and
only the dedup key and time of each accepted event are kept, not the event; counts, dedup and
fault injection work as usual, and `/_emulator/events` lists no events.

Routes: POST /open_api/v1.3/event/track/ (the API; another version answers 40051),
GET /_emulator/events?offset=&limit=, GET /_emulator/stats, GET|POST /_emulator/faults,
POST /_emulator/reset, GET /_emulator/health.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tiktok_emulator.faults import FaultInjector, FaultSpec
from tiktok_emulator.http import DROP, RESET, Drop, Reply, Request
from tiktok_emulator.validate import Invalid, validate_body
from tiktok_sender.api import contract as c
from tiktok_sender.errors import ConfigError
from tiktok_sender.settings import Secret

TRACK_PATH = re.compile(r"/open_api/(v[0-9.]+)/event/track/?")
API_VERSION = "v1.3"
DEDUP_WINDOW_S = 48 * 3600

Key = tuple[str, str, str]  # (event_source_id, event, event_id)

# Per request (each connection is its own task): the token sent, for `verbose_errors`.
_request_token: contextvars.ContextVar[str] = contextvars.ContextVar("request_token", default="")


@dataclass
class Accepted:
    event_source: str
    event_source_id: str
    test_event_code: str | None
    received_at: float
    receive_count: int
    payload: dict[str, Any]


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, orjson.dumps(data), "application/json", headers or {})


class EmulatorApp:
    """State and request handling; runs on one event loop, so no locks are needed."""

    def __init__(
        self,
        *,
        token: Secret | None = None,
        seed: int = 0,
        faults: FaultSpec | None = None,
        clock: Callable[[], float] = time.time,
        lean: bool = False,
    ) -> None:
        self._token = token
        self._clock = clock
        self.lean = lean
        self.faults = FaultInjector(faults or FaultSpec(), seed)
        self.reset()

    def reset(self) -> None:
        self.accepted: dict[Key, Accepted] = {}
        self.seen: dict[Key, float] = {}  # lean mode: when each accepted key was received
        self.undeduplicated = 0  # accepted events without an event_id
        self.codes: Counter[int] = Counter()
        self.requests = 0
        self.events_received = 0
        self.duplicates = 0
        self.faults = FaultInjector(self.faults.spec, self.faults.seed)
        self._request_seq = 0

    # -- the API -----------------------------------------------------------------------------

    def _answer(self, code: int, message: str, status: int = 200, data: dict[str, Any] | None = None,
                **headers: str) -> Reply:
        self.codes[code] += 1
        if code != c.CODE_OK and self.faults.spec.verbose_errors:
            # a gateway that echoes the request headers at the end of messages of about N chars
            echo = f"; request headers: Access-Token={_request_token.get()})"
            pad = max(self.faults.spec.verbose_errors - len(message) - len(echo) - 8, 0)
            message += " (trace=" + "x" * pad + echo
        self._request_seq += 1
        answer = {"code": code, "message": message, "request_id": f"emu{self._request_seq:012d}",
                  "data": data or {}}
        return _json(status, answer, headers)

    def _token_problem(self, request: Request) -> Reply | None:
        given = request.headers.get("access-token", "")
        if not given:
            return self._answer(c.CODE_EMPTY_ACCESS_TOKEN, "Access token is empty")
        if self._token is not None and not hmac.compare_digest(
            given.encode(), self._token.reveal().encode()
        ):
            return self._answer(c.CODE_INVALID_ACCESS_TOKEN, "Access token is invalid")
        return None

    async def track(self, request: Request, version: str) -> Reply | Drop:
        _request_token.set(request.headers.get("access-token", ""))
        ack_fault: list[str] = []
        reply = await self._track(request, version, ack_fault)
        if "lost_ack" in ack_fault:
            return RESET
        if "garbage" in ack_fault and isinstance(reply, Reply):
            return Reply(200, reply.body[: len(reply.body) // 2], "application/json")
        return reply

    async def _track(self, request: Request, version: str, ack_fault: list[str]) -> Reply | Drop:
        self.requests += 1
        problem = self._token_problem(request)
        if problem is not None:
            return problem
        fault = self.faults.next_request()
        spec = self.faults.spec
        if spec.latency_ms:
            await asyncio.sleep(spec.latency_ms / 1000)
        if fault == "revoked":
            return self._answer(c.CODE_INVALID_ACCESS_TOKEN, "Access token is invalid (revoked)")
        if fault == "drop":
            return DROP
        if fault == "reset":
            return RESET
        if fault in ("lost_ack", "garbage"):
            ack_fault.append(fault)  # answered normally, then the answer is lost or mangled
        if fault == "timeout":
            await asyncio.sleep(spec.hang)
            return DROP
        if fault == "http5xx":
            return Reply(503, b"<html><body>503 Service Unavailable</body></html>", "text/html")
        if fault == "http429":
            return _json(429, {"message": "Too Many Requests"},
                         {"Retry-After": f"{spec.retry_after:g}"})
        if fault == "throttle":
            return self._answer(c.CODE_REQUEST_TOO_FREQUENT, "Request too frequent")
        if fault == "sys_error":
            return self._answer(c.CODE_SYS_ERROR, "System error")
        if fault == "code0":  # a WAF or proxy page that happens to say code 0
            return self._answer(c.CODE_OK, "OK", status=spec.code0_status)
        if fault == "redirect":
            return self._answer(c.CODE_OK, "OK", status=302, Location="https://example.invalid/")
        if version != API_VERSION:
            return self._answer(c.CODE_INVALID_API_VERSION, f"Invalid API version {version}")
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return self._answer(c.CODE_INVALID_PARAMS, "request body is not valid JSON")
        try:
            events = validate_body(body, sample=self.lean)
        except Invalid as invalid:
            return self._answer(invalid.code, invalid.message)
        source_id = body.get("event_source_id")
        if source_id in spec.refuse_source:
            return self._answer(c.CODE_PARAM_ERROR, "Invalid event_source_id")
        if source_id in spec.forbid_source:
            return self._answer(
                c.CODE_PERMISSION_ERROR, f"No permission to operate pixel code: {source_id}. "
                "You must be an admin or operator of this advertiser account.")
        ids = {event.get("event_id") for event in events}
        if ids & spec.poison:
            return self._answer(49999, "Unknown error (fault)")
        if ids & spec.poison_http:
            return Reply(400, b"<html><body>Request blocked by a security rule</body></html>",
                         "text/html")
        if ids & spec.poison_5xx:
            return Reply(500, b"<html><body>500 Internal Server Error</body></html>", "text/html")
        for index, event in enumerate(events if spec.reject or spec.reject_noindex else ()):
            event_id = event.get("event_id")
            if event_id in spec.reject:
                return self._answer(c.CODE_PARAM_ERROR, f"data.{index}.event_id: rejected (fault)")
            if event_id in spec.reject_noindex:
                return self._answer(c.CODE_PARAM_ERROR, "Invalid parameters in the request")
        if ids & spec.partial:
            failed = [{"index": i, "event_id": e.get("event_id"), "message": "rejected (fault)"}
                      for i, e in enumerate(events) if e.get("event_id") in spec.partial]
            self._store(body, [e for e in events if e.get("event_id") not in spec.partial])
            return self._answer(c.CODE_PARTIAL_OK, "Partial success",
                                data={"failed_events": failed})
        self._store(body, events)
        if ids & spec.partial_opaque:
            return self._answer(c.CODE_PARTIAL_OK, "Partial success")
        return self._answer(c.CODE_OK, "OK")

    def _store(self, body: dict[str, Any], events: list[dict[str, Any]]) -> None:
        now = self._clock()
        source, source_id = body["event_source"], body["event_source_id"]
        test_code = body.get("test_event_code")
        accepted = self.accepted
        self.events_received += len(events)
        if self.lean:
            self._store_keys(source_id, events, now)
            return
        for event in events:
            event_id = event.get("event_id")
            if event_id is None:
                self.undeduplicated += 1
                continue
            key = (source_id, event["event"], event_id)
            seen = accepted.get(key)
            if seen is not None and now - seen.received_at < DEDUP_WINDOW_S:
                seen.receive_count += 1
                self.duplicates += 1
                continue
            accepted[key] = Accepted(source, source_id, test_code, now,
                                     (seen.receive_count + 1) if seen else 1, event)

    def _store_keys(self, source_id: str, events: list[dict[str, Any]], now: float) -> None:
        seen = self.seen
        for event in events:
            event_id = event.get("event_id")
            if event_id is None:
                self.undeduplicated += 1
                continue
            key = (source_id, event.get("event", ""), event_id)
            received = seen.get(key)
            if received is not None and now - received < DEDUP_WINDOW_S:
                self.duplicates += 1
                continue
            seen[key] = now

    # -- admin -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "track_requests": self.faults.track_requests,
            "events_received": self.events_received,
            "events_accepted": len(self.accepted) + len(self.seen) + self.undeduplicated,
            "lean": self.lean,
            "duplicates": self.duplicates,
            "codes": {str(k): v for k, v in sorted(self.codes.items())},
            "faults_injected": dict(self.faults.injected),
        }

    def events(self, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
        items = list(self.accepted.values())
        window = items[offset: None if limit is None else offset + limit]
        return {
            "total": len(items),
            "events": [
                {
                    "event_source": a.event_source,
                    "event_source_id": a.event_source_id,
                    "test_event_code": a.test_event_code,
                    "received_at": a.received_at,
                    "receive_count": a.receive_count,
                    "payload": a.payload,
                }
                for a in window
            ],
        }

    def set_faults(self, spec: FaultSpec, seed: int | None = None) -> None:
        self.faults = FaultInjector(spec, self.faults.seed if seed is None else seed)

    async def handle(self, request: Request) -> Reply | Drop:
        match = TRACK_PATH.fullmatch(request.path)
        if match is not None:
            if request.method != "POST":
                return Reply(405, b"method not allowed", "text/plain")
            return await self.track(request, match.group(1))
        return self._admin(request)

    def _admin(self, request: Request) -> Reply:
        route = (request.method, request.path.rstrip("/"))
        if route == ("GET", "/_emulator/health"):
            return _json(200, {"ok": True})
        if route == ("GET", "/_emulator/stats"):
            return _json(200, self.stats())
        if route == ("GET", "/_emulator/events"):
            try:
                offset = int(request.query.get("offset", ["0"])[0])
                limit_raw = request.query.get("limit")
                limit = int(limit_raw[0]) if limit_raw else None
            except ValueError:
                return _json(400, {"error": "offset and limit must be integers"})
            return _json(200, self.events(offset, limit))
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return _json(200, {"ok": True})
        if route == ("GET", "/_emulator/faults"):
            return _json(200, {"seed": self.faults.seed, "faults": self.faults.spec.to_dict()})
        if route == ("POST", "/_emulator/faults"):
            try:
                data = orjson.loads(request.body or b"{}")
                if not isinstance(data, dict):
                    raise ConfigError("expected a JSON object")
                seed = data.pop("seed", None)
                spec = (FaultSpec.parse(data["spec"]) if isinstance(data.get("spec"), str)
                        else FaultSpec.from_mapping(data))
            except (orjson.JSONDecodeError, ConfigError) as exc:
                return _json(400, {"error": str(exc)})
            self.set_faults(spec, int(seed) if seed is not None else None)
            return _json(200, {"seed": self.faults.seed, "faults": spec.to_dict()})
        return Reply(404, b"not found", "text/plain")
