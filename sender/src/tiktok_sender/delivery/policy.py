"""The delivery policy: what one API answer for one request means, as data.

`decide(answer, part, event_ids, context)` returns a `Decision`: the receipt status of every event
of the request, the follow-up requests (the same events again, the events not refused, or two
halves), a pause for every worker, and whether to stop the event source or the run. It is pure: no
I/O, no clock, no randomness (the backoff's jitter comes in `context`), so every rule below has a
row in tests/python/sender/test_policy.py.

The rules:
- delivered only on a delivered answer (2xx and code 0 / 40050, or 20001);
- 20001 naming events: exactly those are `rejected`, the others `delivered`; 20001 naming none:
  all `delivered`, with TikTok's message on the receipts;
- a refusal naming events (40002 `data.3...`): those are `rejected`, the others resent at once;
- transient answers are retried with backoff up to `max_attempts` sends; throttling pauses every
  worker and is never split;
- a poison event costs one event, whatever the answer: a refusal naming no event splits the
  request in halves at once; a multi-event request whose attempts run out on a transient or
  unknown answer is split too (each half gets one more send). Halves are sent breadth first, so
  both halves, then the four quarters, answer before any part is split further;
- a refusal is about the event source, not its events, when both halves and all four quarters
  (`SOURCE_PROOF_PARTS`, fewer for small requests) repeat it with the same status, code and
  message, no part was delivered and no request of that source was delivered in the run. Then
  the source stops: its events stay pending, the other sources go on. Until that is known, an
  event refused alone stays pending (`failed`) rather than `rejected`;
- a transient failure that both halves and all quarters repeat is an outage, not a poison event:
  the source stops for this run, its events pending;
- 40001 stops the source it concerns; a refused token (40102/40104/40105, HTTP 401/403) and a
  wrong endpoint or API version (HTTP 3xx/404, 40006/40051) stop the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from tiktok_sender.api.classify import Classification, Verdict
from tiktok_sender.api.pacing import backoff_delay
from tiktok_sender.tables.receipts import DELIVERED, FAILED, REJECTED

SOURCE_PROOF_PARTS = 6  # both halves and the four quarters
EXHAUSTED = "attempts exhausted"  # the note on the receipts of a request out of attempts


class Scope(Enum):
    SOURCE = "source"  # the event source of the request: its events stay pending
    RUN = "run"  # every source: no new request


class StopKind(Enum):
    AUTH = "auth"  # exit 3
    CONFIG = "config"  # exit 4
    UNAVAILABLE = "unavailable"  # the API keeps failing for this source: exit 1


@dataclass(frozen=True)
class Stop:
    scope: Scope
    kind: StopKind
    reason: str


@dataclass(frozen=True)
class Part:
    """A request as the policy sees it: its size and what the events in it went through."""

    size: int
    retries: int = 0  # transient answers drawn so far (by this part or the request it came from)
    depth: int = 0  # splits since the batch was built


@dataclass(frozen=True)
class FollowUp:
    """Events of the request (`indexes` into it) to send again."""

    indexes: Sequence[int]
    retries: int
    depth: int
    delay: float = 0.0  # seconds to wait first
    urgent: bool = True  # before the parts already waiting (a retry); else after them (a half)


@dataclass(frozen=True)
class Probe:
    """What the parts of one split request answered, while it is unknown whether its refusal (or
    failure) is about some of its events or about the whole event source."""

    signature: tuple[object, ...]
    transient: bool  # a family of transient failures (an outage?), not of refusals
    needed: int  # repeats that prove it is the source
    repeats: int = 0
    broken: bool = False  # some part was delivered: it is about events, not the source

    def proven(self, source_delivered: bool) -> bool:
        if self.broken or self.needed == 0 or self.repeats < self.needed:
            return False
        return self.transient or not source_delivered


@dataclass(frozen=True)
class Context:
    max_attempts: int
    backoff_base: float
    backoff_max: float
    source_delivered: bool = False  # a request of this source was delivered in this run
    probe: Probe | None = None  # the probe of the request this part came from
    jitter: float = 0.5  # a uniform draw in [0, 1) for the backoff


@dataclass(frozen=True)
class Decision:
    statuses: tuple[str, ...]  # the receipt status of each event of the request
    follow_ups: tuple[FollowUp, ...] = ()
    messages: Mapping[int, str] = field(default_factory=dict)  # per-event receipt messages
    note: str = ""  # appended to the answer's message on this request's receipts
    pause: float = 0.0  # every worker waits this long (throttling)
    stop: Stop | None = None
    probe: Probe | None = None

    def final(self) -> list[int]:
        """Indexes of the events this decision settles for the run (not sent again)."""
        again = {i for f in self.follow_ups for i in f.indexes}
        return [i for i in range(len(self.statuses)) if i not in again]


def _same(n: int, status: str) -> tuple[str, ...]:
    return (status,) * n


def _halves(part: Part, retries: int) -> tuple[FollowUp, ...]:
    middle = part.size // 2
    depth = part.depth + 1
    return (FollowUp(range(middle), retries, depth, urgent=False),
            FollowUp(range(middle, part.size), retries, depth, urgent=False))


def _source_stop(kind: StopKind, answer: Classification, what: str) -> Stop:
    return Stop(Scope.SOURCE, kind, f"{what}: {describe(answer)}")


def describe(answer: Classification) -> str:
    """An answer in a few words, for log lines and stop reasons."""
    parts = []
    if answer.http_status is not None and answer.http_status != 200:
        parts.append(f"HTTP {answer.http_status}")
    if answer.api_code is not None:
        parts.append(f"code {answer.api_code}")
    if answer.message:
        parts.append(answer.message[:200])
    return " ".join(parts) or "no answer"


def decide(
    answer: Classification, part: Part, event_ids: Sequence[str], context: Context
) -> Decision:
    n, verdict = part.size, answer.verdict
    probe = context.probe
    if verdict in (Verdict.DELIVERED, Verdict.PARTIAL, Verdict.REJECT) and probe is not None:
        probe = replace(probe, broken=True)  # the source takes events: refusals are about events

    if verdict is Verdict.DELIVERED:
        return Decision(_same(n, DELIVERED), probe=probe)

    if verdict is Verdict.PARTIAL:
        positions = {event_id: i for i, event_id in enumerate(event_ids)}
        messages: dict[int, str] = {}
        for problem in answer.problems:
            index = problem.index if problem.index is not None else positions.get(problem.event_id or "")
            if index is not None and 0 <= index < n:
                messages[index] = problem.message or answer.message
        statuses = tuple(REJECTED if i in messages else DELIVERED for i in range(n))
        return Decision(statuses, messages=messages, probe=probe)

    if verdict is Verdict.REJECT:
        bad = {i for i in answer.event_indexes if 0 <= i < n}
        if not bad:  # the indexes are outside this request: it named no event of it
            return _refused(answer, part, context, probe)
        good = tuple(i for i in range(n) if i not in bad)
        statuses = tuple(REJECTED if i in bad else FAILED for i in range(n))
        follow = (FollowUp(good, part.retries, part.depth),) if good else ()
        return Decision(statuses, follow, probe=probe)

    if verdict is Verdict.REFUSE:
        return _refused(answer, part, context, probe)

    if verdict is Verdict.SPLIT:
        if n == 1:
            return Decision((REJECTED,), note="too large to send even alone", probe=probe)
        return Decision(_same(n, FAILED), _halves(part, part.retries), probe=probe)

    if verdict is Verdict.STOP_SOURCE:
        stop = _source_stop(StopKind.AUTH, answer, "the token may not send to this event source")
        return Decision(_same(n, FAILED), stop=stop, probe=probe)
    if verdict in (Verdict.STOP_AUTH, Verdict.STOP_CONFIG):
        kind = StopKind.AUTH if verdict is Verdict.STOP_AUTH else StopKind.CONFIG
        return Decision(_same(n, FAILED), stop=Stop(Scope.RUN, kind, describe(answer)),
                        probe=probe)

    # RETRY and THROTTLE: the same events again, after a backoff, while attempts remain.
    retries = part.retries + 1
    if retries < context.max_attempts:
        delay = backoff_delay(retries, base=context.backoff_base, cap=context.backoff_max,
                              retry_after=answer.retry_after, rng=lambda: context.jitter)
        again = FollowUp(range(n), retries, part.depth, delay=delay)
        pause = delay if verdict is Verdict.THROTTLE else 0.0
        return Decision(_same(n, FAILED), (again,), pause=pause, probe=probe)
    note = f"{EXHAUSTED} ({retries})"
    if verdict is Verdict.THROTTLE:  # the API asks for less: splitting would ask for more
        return Decision(_same(n, FAILED), note=note, probe=probe)
    # Out of attempts on a transient or unknown answer: a poison event, or an outage.
    transient = answer.transient
    signature: tuple[object, ...] = (
        ("transient",) if transient else answer.signature
    )
    probe = _observe(probe, signature, transient, part)
    if probe.proven(context.source_delivered):
        stop = _source_stop(
            StopKind.UNAVAILABLE if transient else StopKind.CONFIG, answer,
            "every part of a request failed the same way (the API or this event source)")
        return Decision(_same(n, FAILED), note=note, stop=stop, probe=probe)
    if n == 1:
        return Decision((FAILED,), note=note, probe=probe)
    return Decision(_same(n, FAILED), _halves(part, context.max_attempts - 1), note=note,
                    probe=probe)


def _observe(probe: Probe | None, signature: tuple[object, ...], transient: bool, part: Part) -> Probe:
    """The probe after a part drew a failure of `signature` (the request that started it counts
    no repeat: it is what the parts are compared with)."""
    if probe is None or part.depth == 0:
        return Probe(signature, transient, needed=min(SOURCE_PROOF_PARTS, 2 * part.size - 2))
    if probe.signature == signature:
        return replace(probe, repeats=probe.repeats + 1)
    return probe


def _refused(answer: Classification, part: Part, context: Context, probe: Probe | None) -> Decision:
    """A refusal naming no event of the request: split until the refused events are alone."""
    n = part.size
    probe = _observe(probe, answer.signature, False, part)
    if probe.proven(context.source_delivered):
        stop = _source_stop(StopKind.CONFIG, answer, "the event source is refused, not its events")
        return Decision(_same(n, FAILED), stop=stop, probe=probe)
    if n > 1:
        return Decision(_same(n, FAILED), _halves(part, part.retries), probe=probe)
    if probe.broken or context.source_delivered:
        return Decision((REJECTED,), probe=probe)
    note = ("kept pending: other parts of its request drew the same refusal, so it may concern "
            "the event source rather than this event")
    return Decision((FAILED,), note=note, probe=probe)
