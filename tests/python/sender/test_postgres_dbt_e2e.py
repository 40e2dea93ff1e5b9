"""The demo project on PostgreSQL, from the build to the audit: `dbt build --target postgres` of the
demo data, `sender push` of that outbox to the emulator (a refused request, rejections, expiries),
`dbt build --target postgres --selector audit`, then the audit models checked against the
receipts, and `sender status` and `sender report` reading them from PostgreSQL.

dbt and the sender read the same profile, the repository's `postgres` target. The project is
built from a copy of its files with demo data at a third of the usual scale, so the checkout's
seeds and target directory are left alone and the build stays short."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pg_harness import PgOutbox, new_database, pg_env
from sender_harness import REPO, TOKEN, Project

from dbt_harness import DEMO_ENV, VENV_BIN, copy_project
from tiktok_emulator import EmulatorThread, FaultSpec
from tiktok_sender.settings import Secret

pytest_plugins = ["pg_fixtures"]

SCHEMA = "tiktok"
REJECTED_IDS = 3
AS_OF = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None).isoformat(sep=" ")
RANK = {"delivered": 1, "rejected": 2, "expired": 3, "failed": 4}


@dataclasses.dataclass
class Built:
    project: Project
    dbt_results: list[dict]
    summaries: list[dict]


def dbt(project: Project, project_dir: Path, *args: str) -> list[dict]:
    proc = subprocess.run(
        [str(VENV_BIN / "dbt"), *args, "--target", "postgres", "--vars", json.dumps({"tiktok_as_of": AS_OF}),
         "--project-dir", str(project_dir)],
        cwd=project_dir, env=project.env, capture_output=True, text=True, timeout=600, check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"dbt {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    return json.loads((project_dir / "target" / "run_results.json").read_text())["results"]


@pytest.fixture(scope="module")
def built(postgres_cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    work = tmp_path_factory.mktemp("pg-e2e")
    project_dir = copy_project(work / "project")
    subprocess.run(  # rewrites every demo CSV
        [sys.executable, str(REPO / "scripts" / "generate_demo_data.py"), "--out", str(project_dir / "seeds" / "demo"),
         "--as-of", AS_OF, "--scale", "0.3"],
        check=True, capture_output=True,
    )
    (work / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
    dbname = new_database(postgres_cluster, "sender_e2e")
    outbox = PgOutbox(postgres_cluster, dbname, SCHEMA)
    env = {**pg_env(work, postgres_cluster, dbname), **DEMO_ENV, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    project = Project(work, outbox, env)  # type: ignore[arg-type]
    results = dbt(project, project_dir, "build")

    rejected = [r[0] for r in outbox.execute(
        f"select event_id from {SCHEMA}.tiktok_events_outbox order by event_time desc, event_id limit %s offset 20",
        [REJECTED_IDS])]
    # The first request, its halves and its quarters get a 503: its source stops for the run.
    faults = FaultSpec.parse("http5xx=1*7,reject=" + "|".join(rejected))
    with EmulatorThread(token=Secret(TOKEN), faults=faults, seed=3) as emulator:
        project.env["TIKTOK_API_URL"] = emulator.url
        common = ("push", "--json", "--batch-size", "100", "--concurrency", "1", "--max-failure-rate", "1")
        # run 1: the first request gets a 503 and, with one attempt allowed, its events fail
        first = project.sender(*common, "--limit", "300", "--max-attempts", "1")
        assert first.returncode == 0, first.stderr
        # run 2: the failed events are resent, old ones expire, the listed ones are rejected
        second = project.sender(*common, "--max-age-days", "25")
        assert second.returncode == 0, second.stderr
        assert len(emulator.events()) == second.json()["delivered"] + first.json()["delivered"]
    dbt(project, project_dir, "build", "--selector", "audit")
    try:
        yield Built(project, results, [first.json(), second.json()])
    finally:
        outbox.drop()


def test_dbt_build_passes_on_postgres_and_the_outbox_is_sent(built: Built) -> None:
    assert {r["status"] for r in built.dbt_results} <= {"success", "pass", "no-op"}
    assert sum(r["unique_id"].startswith("test.") for r in built.dbt_results) > 90
    first, second = built.summaries
    assert first["failed"] == 100 and first["stopped_sources"]  # the events of the refused request
    assert first["pending"] == (first["delivered"] + first["failed"] + first["expired"]
                                + first["held"]) == 300
    assert second["rejected"] == REJECTED_IDS and second["expired"] > 0 and second["failed"] == 0
    (outbox,) = built.project.outbox.execute(f"select count(*) from {SCHEMA}.tiktok_events_outbox")[0]
    settled = first["delivered"] + first["expired"] + second["delivered"] + second["rejected"] + second["expired"]
    assert settled == outbox > 300


def test_delivery_health_reconciles_with_the_receipts(built: Built) -> None:
    """tiktok_delivery_health (built by dbt on PostgreSQL) against the receipts, recounted here:
    per run, each event at its best receipt of the run."""
    best: dict[tuple[str, str, str, str], str] = {}
    for r in built.project.outbox.receipts("test_event_code is null"):
        key = (r["run_id"], r["event_source_id"], r["event"], r["event_id"])
        if key not in best or RANK[r["status"]] < RANK[best[key]]:
            best[key] = r["status"]
    expected = Counter((key[0], status) for key, status in best.items())
    health = built.project.outbox.execute(
        f"select run_id, sum(events), sum(delivered), sum(rejected), sum(failed), sum(expired)"
        f" from {SCHEMA}.tiktok_delivery_health group by run_id")
    runs = {r["run_id"]: r for r in built.project.outbox.runs()}
    assert {row[0] for row in health} == set(runs) and len(runs) == 2
    for run_id, events, delivered, rejected, failed, expired in health:
        counted = {s: expected[(run_id, s)] for s in RANK}
        assert (delivered, rejected, failed, expired) == tuple(counted[s] for s in
                                                               ("delivered", "rejected", "failed", "expired"))
        assert events == sum(counted.values())
        run = runs[run_id]  # and the runs table the sender wrote says the same
        assert (run["delivered"], run["rejected"], run["failed"], run["expired"]) == (
            delivered, rejected, failed, expired)


def test_status_and_report_read_the_audit_from_postgres(built: Built) -> None:
    project = built.project
    status = project.sender("status", "--json")
    assert status.returncode == 0, status.stderr
    figures = status.json()
    totals = figures["audit"]["totals"]
    assert totals["outbox"] == figures["outbox"] and totals["runs"] == 2
    for name in ("delivered", "rejected", "expired", "failed", "never_sent"):
        assert totals[name] == figures[name], name
    assert totals["rejected"] == REJECTED_IDS and totals["failed"] == 0
    reasons = {(r["status"], r["api_code"], r["reason"]): r["events"] for r in figures["audit"]["top_rejections"]}
    assert reasons[("rejected", 40002, "data.N.event_id: rejected (fault)")] == REJECTED_IDS
    text = project.sender("status")
    assert text.returncode == 0 and "delivery health, last 7 days" in text.stdout and "pLTV calibration" in text.stdout

    out = project.root / "report.html"
    report = project.sender("report", "--out", str(out))
    assert report.returncode == 0, report.stderr
    document = out.read_text(encoding="utf-8")
    assert document.startswith("<!DOCTYPE html>") and document.count("<svg") >= 5
    assert "postgres target &#x27;postgres&#x27;" in document
