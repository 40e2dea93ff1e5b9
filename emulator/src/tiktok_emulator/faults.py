"""Fault injection for the emulator: a spec (from a string or JSON) and a seeded injector.

Spec string: comma-separated `key=value`. Rates are a probability per track request, optionally
capped with `*N` (`http5xx=1*3`: the first three requests answer 503). Keys:

    throttle=P      code 40100 (HTTP 200)           http429=P     HTTP 429 with Retry-After
    http5xx=P       HTTP 503 with an HTML body      sys_error=P   code 50000 (HTTP 200)
    timeout=P       no answer for `hang` seconds    drop=P        close the connection unanswered
    latency_ms=X    added to every track request    retry_after=S Retry-After seconds (default 1)
    hang=S          seconds a timeout hangs (30)    revoke_after=N  requests after N get 40105
    reject=ID|ID    40002 naming the event's index  reject_noindex=ID|ID  40002 with no index
    reset=P         TCP reset before any answer; the events are not stored
    lost_ack=P      the events are stored, then the connection is reset (the answer is lost)
    garbage=P       the events are stored, the answer is HTTP 200 with a truncated, non-JSON body
    code0=P         HTTP `code0_status` (default 403) with `{"code": 0}`: a WAF or proxy; nothing stored
    redirect=P      HTTP 302 to another URL, with `{"code": 0}`; nothing stored
    verbose_errors=N  error messages padded to about N characters, ending with the Access-Token

Per event or per event source (`|`-separated ids), every time:

    poison=ID        a request holding the event answers code 49999 (unknown); nothing stored
    poison_http=ID   ... answers HTTP 400 with an HTML page (a WAF rule); nothing stored
    poison_5xx=ID    ... answers HTTP 500 with an HTML page; nothing stored
    partial=ID       the other events are stored; 20001 lists the event in data.failed_events
    partial_opaque=ID  every event is stored; 20001 names none
    refuse_source=SOURCE_ID  every request of the source: 40002 "Invalid event_source_id"
    forbid_source=SOURCE_ID  every request of the source: 40001 "No permission to operate pixel code"

Decisions come from one `random.Random(seed)` drawn in request order, so a seed replays the
same faults for the same sequence of requests.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tiktok_sender.errors import ConfigError

RATE_KINDS = (
    "drop", "timeout", "http5xx", "http429", "throttle", "sys_error", "reset", "lost_ack", "garbage",
    "code0", "redirect",
)
ID_SETS = ("reject", "reject_noindex", "poison", "poison_http", "poison_5xx", "partial",
           "partial_opaque", "refuse_source", "forbid_source")


@dataclass(frozen=True)
class Rate:
    probability: float = 0.0
    max_count: int | None = None

    @classmethod
    def parse(cls, key: str, value: Any) -> Rate:
        if isinstance(value, Mapping):
            return cls._checked(key, value.get("probability", 0), value.get("max_count"))
        text = str(value).strip()
        probability, _, count = text.partition("*")
        return cls._checked(key, probability, count or None)

    @classmethod
    def _checked(cls, key: str, probability: Any, count: Any) -> Rate:
        try:
            p = float(probability)
            n = int(count) if count is not None else None
        except (TypeError, ValueError):
            raise ConfigError(f"fault '{key}': expected a probability like 0.1 or 1*3") from None
        if not 0.0 <= p <= 1.0 or (n is not None and n < 0):
            raise ConfigError(f"fault '{key}': probability must be within 0..1, count >= 0")
        return cls(p, n)

    def __str__(self) -> str:
        return f"{self.probability:g}" + (f"*{self.max_count}" if self.max_count is not None else "")


@dataclass(frozen=True)
class FaultSpec:
    drop: Rate = Rate()
    timeout: Rate = Rate()
    http5xx: Rate = Rate()
    http429: Rate = Rate()
    throttle: Rate = Rate()
    sys_error: Rate = Rate()
    reset: Rate = Rate()
    lost_ack: Rate = Rate()
    garbage: Rate = Rate()
    code0: Rate = Rate()
    redirect: Rate = Rate()
    code0_status: int = 403
    latency_ms: float = 0.0
    retry_after: float = 1.0
    hang: float = 30.0
    revoke_after: int | None = None
    verbose_errors: int = 0
    reject: frozenset[str] = field(default_factory=frozenset)
    reject_noindex: frozenset[str] = field(default_factory=frozenset)
    poison: frozenset[str] = field(default_factory=frozenset)
    poison_http: frozenset[str] = field(default_factory=frozenset)
    poison_5xx: frozenset[str] = field(default_factory=frozenset)
    partial: frozenset[str] = field(default_factory=frozenset)
    partial_opaque: frozenset[str] = field(default_factory=frozenset)
    refuse_source: frozenset[str] = field(default_factory=frozenset)
    forbid_source: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        mapping: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"fault '{item}': expected key=value")
            mapping[key.strip()] = value.strip()
        return cls.from_mapping(mapping)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> FaultSpec:
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in mapping.items():
            if key not in known:
                raise ConfigError(f"unknown fault '{key}' (known: {', '.join(sorted(known))})")
            if key in RATE_KINDS:
                values[key] = Rate.parse(key, value)
            elif key in ID_SETS:
                items = value if isinstance(value, list | tuple | set) else str(value).split("|")
                values[key] = frozenset(str(v) for v in items if str(v))
            elif key == "revoke_after":
                values[key] = None if value in (None, "") else _number(key, value, int)
            elif key in ("verbose_errors", "code0_status"):
                values[key] = _number(key, value, int)
            else:
                values[key] = _number(key, value, float)
        return replace(cls(), **values)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Rate):
                value = str(value)
            elif isinstance(value, frozenset):
                value = sorted(value)
            out[f.name] = value
        return out


def _number(key: str, value: Any, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"fault '{key}': expected a number, got {value!r}") from None
    if number < 0:
        raise ConfigError(f"fault '{key}': must be >= 0")
    return number


class FaultInjector:
    """Decides, request by request, which fault (if any) a track request gets."""

    def __init__(self, spec: FaultSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self._rng = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.track_requests = 0

    def next_request(self) -> str | None:
        """Count one track request; return the fault to inject (a RATE_KINDS name, 'revoked')."""
        self.track_requests += 1
        spec = self.spec
        draws = [self._rng.random() for _ in RATE_KINDS]  # always draw all: stable sequences
        if spec.revoke_after is not None and self.track_requests > spec.revoke_after:
            self.injected["revoked"] += 1
            return "revoked"
        for kind, draw in zip(RATE_KINDS, draws, strict=True):
            rate: Rate = getattr(spec, kind)
            if rate.probability and draw < rate.probability:
                if rate.max_count is not None and self.injected[kind] >= rate.max_count:
                    continue
                self.injected[kind] += 1
                return kind
        return None
