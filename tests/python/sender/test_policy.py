"""The delivery policy, rule by rule: one answer for one request -> receipts, follow-ups, stops.

Pure: no asyncio, no HTTP, no warehouse. `answer()` builds the classification of an answer the way
`classify` would; each row of a table is one rule of policy.py's docstring.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tiktok_sender.api.classify import Classification, EventProblem, Verdict
from tiktok_sender.delivery.policy import (
    EXHAUSTED,
    SOURCE_PROOF_PARTS,
    Context,
    Decision,
    FollowUp,
    Part,
    Probe,
    Scope,
    StopKind,
    decide,
)

D, R, F = "delivered", "rejected", "failed"
CONTEXT = Context(max_attempts=3, backoff_base=1.0, backoff_max=8.0, jitter=0.0)


def answer(verdict: Verdict, code: int | None = 0, message: str = "", status: int | None = 200,
           **extra: object) -> Classification:
    return Classification(verdict, status, code, message, **extra)  # type: ignore[arg-type]


def run(a: Classification, size: int = 4, retries: int = 0, depth: int = 0,
        context: Context = CONTEXT, ids: tuple[str, ...] = ()) -> Decision:
    return decide(a, Part(size, retries, depth), ids or tuple(f"e{i}" for i in range(size)), context)


def indexes(follow: FollowUp) -> list[int]:
    return list(follow.indexes)


@pytest.mark.parametrize(
    ("name", "a", "statuses", "follow_ups", "stop"),
    [
        ("delivered", answer(Verdict.DELIVERED), (D, D, D, D), [], None),
        ("20001 naming no event: delivered with its message",
         answer(Verdict.DELIVERED, 20001, "partial success naming no event"), (D, D, D, D), [], None),
        ("20001 naming events by index and id: exactly those rejected",
         answer(Verdict.PARTIAL, 20001, "Partial", problems=(
             EventProblem(1, None, "bad"), EventProblem(None, "e3", "old"),
             EventProblem(9, None, "out of range"))),
         (D, R, D, R), [], None),
        ("40002 naming an event: it is rejected, the rest resent at once",
         answer(Verdict.REJECT, 40002, "data.2.event_id: bad", event_indexes=(2,)),
         (F, F, R, F), [[0, 1, 3]], None),
        ("40002 naming an index outside the request: treated as naming none",
         answer(Verdict.REJECT, 40002, "data.7.x: bad", event_indexes=(7,)),
         (F, F, F, F), [[0, 1], [2, 3]], None),
        ("refusal naming no event: split in halves",
         answer(Verdict.REFUSE, 40002, "Invalid parameters"), (F, F, F, F), [[0, 1], [2, 3]], None),
        ("too large: split", answer(Verdict.SPLIT, 40061), (F, F, F, F), [[0, 1], [2, 3]], None),
        ("transient: the same events again",
         answer(Verdict.RETRY, 50000), (F, F, F, F), [[0, 1, 2, 3]], None),
        ("throttled: the same events again", answer(Verdict.THROTTLE, 40100), (F, F, F, F),
         [[0, 1, 2, 3]], None),
        ("40001: the source stops", answer(Verdict.STOP_SOURCE, 40001, "no permission"),
         (F, F, F, F), [], (Scope.SOURCE, StopKind.AUTH)),
        ("token refused: the run stops", answer(Verdict.STOP_AUTH, 40105), (F, F, F, F), [],
         (Scope.RUN, StopKind.AUTH)),
        ("wrong endpoint or version: the run stops", answer(Verdict.STOP_CONFIG, None, status=302),
         (F, F, F, F), [], (Scope.RUN, StopKind.CONFIG)),
    ],
)
def test_one_answer(name: str, a: Classification, statuses: tuple[str, ...],
                    follow_ups: list[list[int]], stop: tuple[Scope, StopKind] | None) -> None:
    decision = run(a)
    assert decision.statuses == statuses, name
    assert [indexes(f) for f in decision.follow_ups] == follow_ups, name
    assert (None if decision.stop is None else (decision.stop.scope, decision.stop.kind)) == stop
    # an event is either settled by this answer or sent again, never both, never neither
    assert sorted(decision.final() + [i for f in decision.follow_ups for i in f.indexes]) == [0, 1, 2, 3]


def test_partial_messages_are_per_event() -> None:
    decision = run(answer(Verdict.PARTIAL, 20001, "Partial", problems=(EventProblem(0, None, "bad email"),)))
    assert decision.messages == {0: "bad email"}


def test_retries_back_off_and_throttling_pauses_everyone() -> None:
    retry = run(answer(Verdict.RETRY, 50000, retry_after=None), retries=1)
    (again,) = retry.follow_ups
    assert (again.retries, again.urgent, again.delay, retry.pause) == (2, True, 1.0, 0.0)
    throttle = run(answer(Verdict.THROTTLE, None, status=429, retry_after=5.0))
    assert throttle.pause == throttle.follow_ups[0].delay == 5.0


def test_throttling_out_of_attempts_is_failed_never_split() -> None:
    decision = run(answer(Verdict.THROTTLE, 40100), retries=2)
    assert decision.statuses == (F,) * 4 and decision.follow_ups == () and decision.stop is None
    assert decision.final() == [0, 1, 2, 3]


@pytest.mark.parametrize("a", [
    answer(Verdict.RETRY, 49999, "unknown code"),
    answer(Verdict.RETRY, None, "HTTP 503 without an API code", status=503),
    answer(Verdict.RETRY, None, "timeout (ReadTimeout)", status=None),
])
def test_out_of_attempts_a_batch_is_split_and_each_half_gets_one_more_send(a: Classification) -> None:
    decision = run(a, size=6, retries=2)
    assert [indexes(f) for f in decision.follow_ups] == [[0, 1, 2], [3, 4, 5]]
    assert all(f.retries == CONTEXT.max_attempts - 1 and not f.urgent for f in decision.follow_ups)
    assert decision.note.startswith(EXHAUSTED)
    alone = run(a, size=1, retries=2)
    assert alone.statuses == (F,) and alone.follow_ups == () and alone.stop is None


def bisect(size: int, refused: set[int], a: Classification, context: Context = CONTEXT,
           retries_to_exhaust: bool = False) -> tuple[dict[int, str], Decision | None, int]:
    """Drive the policy over a whole split, breadth first, with an API that answers `a` to any
    request holding an event of `refused` and delivers the others. Returns each event's last
    status, the stopping decision (if any) and the number of requests."""
    queue = [(list(range(size)), Part(size, context.max_attempts - 1 if retries_to_exhaust else 0))]
    status: dict[int, str] = {}
    probe: Probe | None = None
    requests = 0
    while queue:
        events, part = queue.pop(0)
        requests += 1
        got = a if refused & set(events) else answer(Verdict.DELIVERED)
        decision = decide(got, part, [f"e{i}" for i in events], replace(context, probe=probe))
        probe = decision.probe
        for i, s in enumerate(decision.statuses):
            status[events[i]] = s
        if decision.stop is not None:
            return status, decision, requests
        for follow in decision.follow_ups:
            item = ([events[i] for i in follow.indexes], Part(len(follow.indexes), follow.retries,
                                                               follow.depth))
            queue.insert(0, item) if follow.urgent else queue.append(item)
    return status, None, requests


REFUSAL = answer(Verdict.REFUSE, 40002, "Invalid parameters")
UNKNOWN = answer(Verdict.RETRY, 49999, "unknown")


@pytest.mark.parametrize("a, exhaust, bad_status", [(REFUSAL, False, R), (UNKNOWN, True, F)])
@pytest.mark.parametrize("refused", [{0}, {999}, {17, 500}, {1, 2, 3, 600, 601}])
def test_poison_events_cost_only_themselves(a: Classification, exhaust: bool, bad_status: str,
                                            refused: set[int]) -> None:
    status, stop, requests = bisect(1000, refused, a, retries_to_exhaust=exhaust)
    assert stop is None
    assert {i for i, s in status.items() if s != D} == refused
    assert all(status[i] == bad_status for i in refused)
    assert requests <= 1 + 2 * 10 * len(refused) + 2  # about two requests per halving per event


@pytest.mark.parametrize("size", [1000, 7, 4, 2])
def test_a_refusal_every_part_repeats_stops_the_source_with_nothing_rejected(size: int) -> None:
    status, stop, requests = bisect(size, set(range(size)), REFUSAL)
    assert stop is not None and stop.stop is not None
    assert (stop.stop.scope, stop.stop.kind) == (Scope.SOURCE, StopKind.CONFIG)
    assert R not in status.values()
    assert requests == 1 + min(SOURCE_PROOF_PARTS, 2 * size - 2)


def test_a_lone_event_batch_refused_is_kept_pending_until_the_source_is_known_good() -> None:
    assert run(REFUSAL, size=1).statuses == (F,)
    assert run(REFUSAL, size=1, context=replace(CONTEXT, source_delivered=True)).statuses == (R,)


def test_once_the_source_delivered_in_the_run_a_repeated_refusal_is_about_events() -> None:
    context = replace(CONTEXT, source_delivered=True)
    status, stop, _ = bisect(8, set(range(8)), REFUSAL, context)
    assert stop is None and set(status.values()) == {R}


def test_two_bad_events_one_in_each_half_do_not_stop_the_source() -> None:
    status, stop, _ = bisect(1000, {10, 900}, REFUSAL)
    assert stop is None and {i for i, s in status.items() if s == R} == {10, 900}


@pytest.mark.parametrize("outage", [
    answer(Verdict.RETRY, None, "HTTP 503 without an API code", status=503),
    answer(Verdict.RETRY, 50000, "System error"),  # a system-error code: the API, not the source
])
def test_an_outage_stops_the_source_instead_of_splitting_to_single_events(
    outage: Classification,
) -> None:
    status, stop, requests = bisect(1000, set(range(1000)), outage, retries_to_exhaust=True)
    assert stop is not None and stop.stop is not None
    assert (stop.stop.scope, stop.stop.kind) == (Scope.SOURCE, StopKind.UNAVAILABLE)
    assert requests == 1 + SOURCE_PROOF_PARTS and set(status.values()) == {F}


def test_an_unknown_code_every_part_repeats_is_the_source_not_an_outage() -> None:
    status, stop, _ = bisect(1000, set(range(1000)), UNKNOWN, retries_to_exhaust=True)
    assert stop is not None and stop.stop is not None
    assert (stop.stop.scope, stop.stop.kind) == (Scope.SOURCE, StopKind.CONFIG)
    assert set(status.values()) == {F}
