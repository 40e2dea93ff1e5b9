"""The fault matrix: each scenario runs the real `sender push` against the emulator's fault
injection on 127.0.0.1, re-runs it as an operator would, and reconciles the emulator, the
receipts and the outbox event by event.

Used by test_fault_matrix.py (one test per scenario) and by scripts/fault_matrix.py (the table).

After a scenario, for every outbox event (key: event_source_id, event, event_id):
- accepted by the emulator  <=>  it has a `delivered` receipt (whose payload hash is the hash of
  what the emulator stored), or else
- it has a terminal `rejected` / `expired` receipt with a reason;
- nothing is still `failed` or never sent (but the poison events a scenario names); the emulator
  holds no event outside the outbox (so a resend never used another id); the runs table adds up
  to the same counts.
`lost` counts events that satisfy none of this, and `refused as delivered` the events with a
`delivered` receipt that the API never stored; both must be 0.
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sender_harness import APP_ID, PROFILES_YML, TOKEN, Project, Result, base_env, make_outbox

from tiktok_emulator import EmulatorThread
from tiktok_sender.settings import Secret

EVENTS = 300  # 225 web + 75 app events
# Fast but realistic client settings: small batches so a run makes many requests, short timeouts.
BATCH = 25
FLAGS = ("--json", "--batch-size", str(BATCH), "--concurrency", "4", "--max-attempts", "6",
         "--timeout", "0.5", "--connect-timeout", "0.5")
DOWN = "<api down>"  # a run against a closed port (connection refused)
MAX_RUNS = 4


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    runs: tuple[str, ...]  # the fault spec of each run; the last repeats while events are pending
    seed: int = 1
    exit_codes: tuple[int, ...] = ()  # expected exit codes of the first runs
    rejected: int = 0  # events the scenario must reject
    sent_twice: bool = False  # the scenario must make some events arrive twice
    min_seconds: float = 0.0  # the first run must last at least this long (Retry-After honoured)
    failed: int = 0  # poison events left `failed` (pending) after every run
    stops_source: bool = False  # the first run must stop an event source (and only that)
    api_code: int | None = None  # some `delivered` receipt must carry this API code


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("throttle_40100_burst", "a burst of 40100 answers (every worker pauses)",
             ("throttle=1*12",), exit_codes=(0,)),
    Scenario("http429_retry_after", "HTTP 429 with Retry-After: 1 (backoff cap is 0.05 s)",
             ("http429=1*4,retry_after=1",), exit_codes=(0,), min_seconds=1.0),
    Scenario("http5xx", "HTTP 503 with an HTML body on 30% of requests",
             ("http5xx=0.3",), exit_codes=(0,)),
    Scenario("sys_error_50000", "code 50000 on 30% of requests",
             ("sys_error=0.3",), exit_codes=(0,)),
    Scenario("read_timeout", "no answer within the 0.5 s read timeout on 20% of requests",
             ("timeout=0.2,hang=2",), exit_codes=(0,)),
    Scenario("connection_reset", "TCP reset before an answer on 30% of requests",
             ("reset=0.3",), exit_codes=(0,)),
    Scenario("lost_ack", "events stored, then the connection reset (answer lost) on 30%",
             ("lost_ack=0.3",), exit_codes=(0,), sent_twice=True),
    Scenario("non_json_answer", "events stored, answer HTTP 200 with truncated JSON on 30%",
             ("garbage=0.3",), exit_codes=(0,), sent_twice=True),
    Scenario("reject_40002_index", "40002 naming one event of a batch (data.N.event_id)",
             ("reject=evt-00000017",), exit_codes=(1,), rejected=1),
    Scenario("reject_40002_no_index", "40002 without an index for two events (batch bisection)",
             ("reject_noindex=evt-00000122|evt-00000203",), exit_codes=(1,), rejected=2),
    Scenario("token_revoked_40105", "token revoked after 3 requests; re-run with a valid token",
             ("revoke_after=3", ""), exit_codes=(3, 0)),
    Scenario("api_down", "connection refused for a whole run; re-run when the API is back",
             (DOWN, ""), exit_codes=(1, 0)),
    Scenario("chaos", "every transient fault at once, plus one bad event, over several runs",
             ("throttle=0.1,http429=0.05,http5xx=0.1,sys_error=0.05,timeout=0.05,hang=1,"
              "reset=0.05,lost_ack=0.05,garbage=0.05,retry_after=0.05,reject=evt-00000042",),
             seed=5, rejected=1),
    Scenario("code0_under_403", "HTTP 403 whose body says code 0 (a WAF page): never delivered",
             ("code0=1*2", ""), exit_codes=(3, 0)),
    Scenario("redirect_302", "HTTP 302 whose body says code 0 (a wrong URL): the run stops",
             ("redirect=1*1", ""), exit_codes=(4, 0)),
    Scenario("poison_unknown_code", "one event draws code 49999 in every request holding it",
             ("poison=evt-00000017",), exit_codes=(1,), failed=1),
    Scenario("poison_4xx_without_code", "one event makes a WAF answer HTTP 400 (HTML) every time",
             ("poison_http=evt-00000017",), exit_codes=(1,), rejected=1),
    Scenario("poison_5xx", "one event makes the API answer HTTP 500 every time",
             ("poison_5xx=evt-00000017",), exit_codes=(1,), failed=1),
    Scenario("partial_20001", "20001 naming two events of a request in data.failed_events",
             ("partial=evt-00000017|evt-00000018",), exit_codes=(1,), rejected=2),
    Scenario("partial_20001_opaque", "20001 naming no event (all stored): delivered, message kept",
             ("partial_opaque=evt-00000017",), exit_codes=(0,), api_code=20001),
    Scenario("source_refused_40002", "40002 'Invalid event_source_id' for every app request; "
             "fixed, re-run", (f"refuse_source={APP_ID}", ""), exit_codes=(4, 0), stops_source=True),
    Scenario("permission_40001_one_source", "40001 for the app source only; re-authorised, re-run",
             (f"forbid_source={APP_ID}", ""), exit_codes=(3, 0), stops_source=True),
)


@dataclass
class Row:
    """One line of the fault-matrix table, plus what went wrong (must be empty)."""

    scenario: str
    events: int = 0
    runs: int = 0
    requests: int = 0
    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    held: int = 0
    sent_twice: int = 0
    lost: int = 0
    misdelivered: int = 0
    seconds: float = 0.0
    exit_codes: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/open_api/v1.3/event/track/"


def _specs(scenario: Scenario, runs: int) -> list[str]:
    return [scenario.runs[min(run, len(scenario.runs) - 1)] for run in range(runs)]


def pending_events(project: Project) -> int:
    """Outbox events without a terminal production receipt."""
    ((n,),) = project.outbox.execute(
        "select count(*) from tiktok.tiktok_events_outbox o where not exists ("
        " select 1 from tiktok.tiktok_delivery_receipts r"
        " where (r.event_source_id, r.event, r.event_id) = (o.event_source_id, o.event, o.event_id)"
        " and r.test_event_code is null and r.status in ('delivered', 'rejected', 'expired'))"
    )
    return int(n)


def duckdb_project(workdir: Path, events: int) -> Project:
    """A project with a DuckDB outbox of `events` events (the emulator's URL is set per run)."""
    (workdir / "profiles.yml").write_text(PROFILES_YML)
    db = workdir / "warehouse.duckdb"
    return Project(workdir, make_outbox(db, events), base_env(workdir, db))


def run_scenario(
    scenario: Scenario,
    workdir: Path,
    make_project: Callable[[Path, int], Project] = duckdb_project,
) -> Row:
    """Set up an outbox (`make_project`: DuckDB by default) and an emulator, run `sender push`
    (and re-runs), reconcile."""
    project = make_project(workdir, EVENTS)
    with EmulatorThread(token=Secret(TOKEN), seed=scenario.seed) as emulator:
        row = Row(scenario.name, events=EVENTS)
        started = time.monotonic()
        results: list[Result] = []
        injected: Counter[str] = Counter()
        for run in range(MAX_RUNS):
            spec = scenario.runs[min(run, len(scenario.runs) - 1)]
            url = _closed_port_url() if spec == DOWN else emulator.url
            emulator.set_faults("" if spec == DOWN else spec, seed=scenario.seed + run)
            run_started = time.monotonic()
            result = project.sender("push", *FLAGS, env={"TIKTOK_API_URL": url})
            if run == 0 and time.monotonic() - run_started < scenario.min_seconds:
                row.problems.append(
                    f"first run took {time.monotonic() - run_started:.2f}s, "
                    f"less than the {scenario.min_seconds}s Retry-After asks for")
            results.append(result)
            injected.update(emulator.stats()["faults_injected"])
            row.exit_codes.append(result.returncode)
            if "Traceback" in result.stderr or TOKEN in result.stdout + result.stderr:
                row.problems.append(f"run {run + 1}: traceback or token in the output")
            if pending_events(project) <= scenario.failed and run + 1 >= len(scenario.runs):
                break
        row.runs = len(results)
        row.seconds = time.monotonic() - started
        expected = list(scenario.exit_codes)
        if row.exit_codes[: len(expected)] != expected:
            row.problems.append(f"exit codes {row.exit_codes}, expected {expected} first")
        reconcile(project, emulator, row, results, poisoned=scenario.failed)
        summaries = [orjson.loads(r.stdout) for r in results if r.stdout.strip().startswith("{")]
        row.held = sum(s.get("held", 0) for s in summaries)
        if scenario.stops_source and not (summaries and summaries[0].get("stopped_sources")):
            row.problems.append("the first run stopped no event source")
        if scenario.api_code is not None and not any(
                r["status"] == "delivered" and r["api_code"] == scenario.api_code
                for r in project.outbox.receipts("test_event_code is null")):
            row.problems.append(f"no delivered receipt carries code {scenario.api_code}")
        # Only a request whose answer the sender never read (lost, cut, unreadable, timed out on
        # a loaded machine) may repeat events: each repeat of an event needs a `failed` receipt of
        # that event with no HTTP status, or a 2xx one without an API code (an error page, a 429
        # or a 5xx was read, and the API stored nothing).
        unanswered: Counter[tuple[str, str, str]] = Counter(
            (r["event_source_id"], r["event"], r["event_id"])
            for r in project.outbox.receipts("test_event_code is null")
            if r["status"] == "failed" and r["api_code"] is None
            and (r["http_status"] is None or 200 <= r["http_status"] < 300))
        repeats = {}
        for a in emulator.events():
            key = (a["event_source_id"], a["payload"]["event"], a["payload"]["event_id"])
            if a["receive_count"] - 1 > unanswered[key]:
                repeats[key] = a["receive_count"] - 1
        if repeats:
            row.problems.append(
                f"{len(repeats)} event(s) repeated more often than their unanswered requests, "
                f"e.g. {sorted(repeats)[:3]}")
        if scenario.sent_twice and not injected["lost_ack"] + injected["garbage"]:
            row.problems.append("the scenario injected no lost answer")
        api_requests = sum(
            orjson.loads(r.stdout)["requests"]
            for r, spec in zip(results, _specs(scenario, len(results)), strict=True)
            if spec != DOWN and r.stdout.strip().startswith("{")
        )
        if api_requests != emulator.stats()["requests"]:
            row.problems.append("the sender's and the emulator's request counts differ")
    if row.rejected != scenario.rejected:
        row.problems.append(f"{row.rejected} event(s) rejected, expected {scenario.rejected}")
    if scenario.sent_twice and not row.sent_twice:
        row.problems.append("no event arrived twice: the fault did not bite")
    return row


def reconcile(
    project: Project,
    emulator: EmulatorThread,
    row: Row,
    results: list[Result],
    *,
    killed_runs: int = 0,
    poisoned: int = 0,
) -> None:
    """Check the invariants of the module docstring; `results` are the runs that finished,
    `killed_runs` the ones killed with SIGKILL (their run rows stay `running` until a later run
    marks them `crashed`), `poisoned` the
    events expected to stay `failed`."""
    outbox = {
        (s, e, i): None
        for s, e, i in project.outbox.execute(
            "select event_source_id, event, event_id from tiktok.tiktok_events_outbox")
    }
    accepted = {
        (a["event_source_id"], a["payload"]["event"], a["payload"]["event_id"]): a
        for a in emulator.events()
    }
    stats = emulator.stats()
    row.requests = sum(
        orjson.loads(r.stdout)["requests"] for r in results if r.stdout.strip().startswith("{"))
    receipts = project.outbox.receipts("test_event_code is null")
    by_key: dict[tuple[str, str, str], list[dict]] = {}
    for r in receipts:
        by_key.setdefault((r["event_source_id"], r["event"], r["event_id"]), []).append(r)
    problems = row.problems

    if stats["events_accepted"] != len(accepted):
        problems.append("emulator stats and stored events disagree")
    foreign = set(accepted) - set(outbox)
    if foreign:
        problems.append(f"{len(foreign)} accepted event(s) not in the outbox (another id?)")
    if set(by_key) - set(outbox):
        problems.append("receipts for events that are not in the outbox")
    ids = [r["receipt_id"] for r in receipts]
    if len(ids) != len(set(ids)):
        problems.append("duplicate receipt_id")

    final: Counter[str] = Counter()
    for key in outbox:
        statuses = {r["status"] for r in by_key.get(key, [])}
        in_emulator = key in accepted
        if "delivered" in statuses:
            if not in_emulator:
                final["misdelivered"] += 1  # a receipt claims a delivery the API never saw
                continue
            hashes = {r["payload_sha256"] for r in by_key[key] if r["status"] == "delivered"}
            stored = hashlib.sha256(orjson.dumps(accepted[key]["payload"])).hexdigest()
            if stored not in hashes:
                problems.append(f"{key[2]}: the stored payload differs from the receipt's hash")
            final["delivered"] += 1
        elif in_emulator:
            problems.append(f"{key[2]}: accepted by the API but no delivered receipt")
            final["delivered_unrecorded"] += 1
        elif statuses & {"rejected", "expired"}:
            reasons = [r["api_message"] for r in by_key[key] if r["status"] in ("rejected", "expired")]
            if not all(reasons):
                problems.append(f"{key[2]}: terminal receipt without a reason")
            final["rejected" if "rejected" in statuses else "expired"] += 1
        elif "failed" in statuses:
            final["failed"] += 1
        else:
            final["lost"] += 1
    row.delivered = final["delivered"]
    row.rejected = final["rejected"]
    row.failed = final["failed"]
    row.lost = final["lost"]
    row.misdelivered = final["misdelivered"]
    row.sent_twice = sum(1 for a in accepted.values() if a["receive_count"] > 1)
    if row.failed != poisoned:
        problems.append(f"{row.failed} event(s) still failed after {row.runs} run(s), "
                        f"expected {poisoned}")
    if row.lost:
        problems.append(f"{row.lost} event(s) lost")
    if row.misdelivered:
        problems.append(f"{row.misdelivered} event(s) refused but recorded as delivered")
    if (row.delivered + row.rejected + row.failed + final["expired"] != len(outbox)
            and not row.lost and not row.misdelivered):
        problems.append("delivered + rejected + expired does not add up to the outbox")

    # the runs table and the summaries agree with the receipts
    runs = project.outbox.runs()
    killed = {r["run_id"] for r in runs if r["outcome"] in ("running", "crashed")}
    if len(runs) != len(results) + killed_runs or len(killed) != killed_runs:
        problems.append("runs table: a run row is missing, or was left running without a kill")
    if results and any(r["outcome"] == "running" for r in runs):
        problems.append("runs table: a killed run is still `running` after a later run")
    delivered_by_killed = len({
        key for key, rs in by_key.items()
        for r in rs if r["status"] == "delivered" and r["run_id"] in killed
    })
    if sum(r["delivered"] for r in runs if r["run_id"] not in killed) + delivered_by_killed != row.delivered:
        problems.append("runs table: delivered counts do not add up to the receipts")
    summaries = [orjson.loads(r.stdout) for r in results if r.stdout.strip().startswith("{")]
    if len(summaries) != len(results):
        problems.append("a run printed no JSON summary")
    elif sum(s["delivered"] for s in summaries) + delivered_by_killed != row.delivered:
        problems.append("summaries: delivered counts do not add up to the receipts")


HEADER = ("scenario", "events", "runs", "requests", "delivered", "rejected", "failed", "held",
          "sent twice (same id)", "refused as delivered", "lost", "seconds", "ok")


def table(rows: list[Row]) -> str:
    cells = [
        (r.scenario, r.events, r.runs, r.requests, r.delivered, r.rejected, r.failed, r.held,
         r.sent_twice, r.misdelivered, r.lost, f"{r.seconds:.1f}", "yes" if r.ok else "NO")
        for r in rows
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(HEADER, *cells, strict=True)]
    lines = [" | ".join(str(h).ljust(w) for h, w in zip(HEADER, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    for cell in cells:
        lines.append(" | ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cell, widths, strict=True))))
    return "\n".join(lines)


def run_all(names: list[str] | None = None) -> list[Row]:
    chosen = [s for s in SCENARIOS if not names or s.name in names]
    rows = []
    for scenario in chosen:
        with tempfile.TemporaryDirectory(prefix=f"fault-{scenario.name}-") as tmp:
            rows.append(run_scenario(scenario, Path(tmp)))
    return rows
