"""The audit figures end to end: the demo project built into its own DuckDB file, pushed to the
emulator with injected failures, rejections and expiries, the audit models rebuilt over the
receipts; then the terminal tables of `sender status` and the HTML report, opened in headless
Chromium to check that every chart is really drawn and that nothing is fetched."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from sender_harness import PROFILES_YML, TOKEN, Outbox, Project, base_env, make_outbox

from dbt_harness import PROJECT_ROOT, dbt_env, run_dbt
from tiktok_emulator import EmulatorThread, FaultSpec
from tiktok_sender.audit.read import AUDIT_MODELS, AuditData, AuditTablesMissing, read_audit
from tiktok_sender.audit.report import render_report, write_report
from tiktok_sender.audit.text import audit_dict, audit_section, render_audit_tables
from tiktok_sender.errors import EXIT_CONFIG, SenderError
from tiktok_sender.profiles import WarehouseTarget, load_target
from tiktok_sender.settings import Secret

CHROMIUM = Path("/usr/bin/chromium")
SCHEMA = "tiktok"
REJECTED_IDS = 3
EXPIRE_AFTER_DAYS = "25"  # the demo outbox spans 28 days: the oldest events expire


@dataclasses.dataclass
class Built:
    root: Path
    db: Path
    target: WarehouseTarget
    rejected_ids: list[str]
    failed_first_run: int


def _dbt(args: list[str], db: Path, scratch: Path) -> None:
    # own target and log paths, so the checkout's target/ and logs/ are left alone
    run_dbt([*args, "--target-path", str(scratch / "target"), "--log-path", str(scratch / "logs")], db)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("audit")
    db = root / "tiktok_outbox.duckdb"
    subprocess.run(
        [sys.executable, "scripts/generate_demo_data.py", "--out", "seeds/demo"],
        cwd=PROJECT_ROOT, env=dbt_env(db), check=True, capture_output=True,
    )
    _dbt(["seed"], db, root)
    _dbt(["run"], db, root)

    with duckdb.connect(str(db), read_only=True) as con:
        # young events, so they are sent (not expired) in the second run
        rejected = [r[0] for r in con.execute(
            f"select event_id from {SCHEMA}.tiktok_events_outbox order by event_time desc limit ? offset 50",
            [REJECTED_IDS],
        ).fetchall()]
    (root / "profiles.yml").write_text(PROFILES_YML)
    # The first request and its halves and quarters get a 503: the policy splits a request
    # whose attempts ran out, then stops its source for the run when every part fails too.
    faults = FaultSpec.parse("http5xx=1*7,reject=" + "|".join(rejected))
    with EmulatorThread(token=Secret(TOKEN), faults=faults, seed=3) as emulator:
        project = Project(root, Outbox(db, SCHEMA), {**base_env(root, db), "TIKTOK_API_URL": emulator.url})
        common = ["push", "--json", "--batch-size", "100", "--concurrency", "1", "--max-failure-rate", "1"]
        # run 1: the first request gets a 503 and, with one attempt allowed, its events fail
        first = project.sender(*common, "--limit", "400", "--max-attempts", "1")
        assert first.returncode == 0, first.stderr
        run_id = first.json()["run_id"]
        failed = len({r["event_id"] for r in project.outbox.receipts(
            f"run_id = '{run_id}' and status = 'failed'")})
        assert failed == first.json()["failed"] == 100 and first.json()["stopped_sources"]
        # run 2: the failed events are resent, old ones expire, the listed ones are rejected
        second = project.sender(*common, "--max-age-days", EXPIRE_AFTER_DAYS)
        assert second.returncode == 0, second.stderr
        assert second.json()["expired"] > 0 and second.json()["rejected"] == REJECTED_IDS

    _dbt(["build", "--selector", "audit"], db, root)
    target = load_target(profiles_dir_flag=root, environ={"DBT_DUCKDB_PATH": str(db)}, cwd=root)
    return Built(root, db, target, rejected, failed)


@pytest.fixture(scope="module")
def audit(built: Built) -> AuditData:
    return read_audit(built.target)


def test_every_audit_model_has_rows(built: Built) -> None:
    with duckdb.connect(str(built.db), read_only=True) as con:
        counts = {m: con.execute(f"select count(*) from {SCHEMA}.{m}").fetchone()[0] for m in AUDIT_MODELS}
    assert all(n > 0 for n in counts.values()), counts


def test_audit_figures_show_what_happened(audit: AuditData, built: Built) -> None:
    t = audit.totals
    assert t["outbox"] == t["delivered"] + t["rejected"] + t["expired"] + t["failed"] + t["never_sent"]
    assert t["rejected"] == REJECTED_IDS and t["expired"] > 0 and t["failed"] == 0 and t["never_sent"] == 0
    assert t["runs"] == 2
    # one day, two runs: a bar per run, the first with the events of the refused request
    assert audit.delivery_period == "run" and len(audit.deliveries) == 2
    assert audit.deliveries[0]["failed"] == built.failed_first_run
    assert sum(b["rejected"] for b in audit.deliveries) == REJECTED_IDS
    reasons = {(r["status"], r["api_code"], r["reason"]): r["events"] for r in audit.rejections}
    assert reasons[("rejected", 40002, "data.N.event_id: rejected (fault)")] == REJECTED_IDS
    http_503 = ("HTTP 503 without an API code: <html><body>503 Service Unavailable</body></html>; "
                "attempts exhausted (1)")
    assert reasons[("failed", None, http_503)] == built.failed_first_run
    assert {r["event"] for r in audit.readiness} == {"CompletePayment", "Subscribe", "SubmitForm"}
    assert {r["experiment_cell"] for r in audit.readout} == {"treatment", "holdout"}
    assert audit.calibration and audit.calibration_versions and audit.match and audit.values
    json.dumps(audit_dict(audit))  # `sender status --json` can print it


def test_status_tables_carry_every_figure(audit: AuditData) -> None:
    text = render_audit_tables(audit)
    for title in ("delivery health, last 7 days", "latency from conversion to delivery", "match keys per event",
                  "value-based optimisation readiness", "schema drift", "pLTV calibration",
                  "experiment readout"):
        assert title in text
    for event in ("CompletePayment", "Subscribe", "SubmitForm", "StartTrial"):
        assert event in text
    # the day's top error: the 503s of the first run or the expired events, whichever are more
    top = ("HTTP 503 without an API code" if audit.deliveries[0]["failed"] > audit.totals["expired"]
           else "not sent: event is older than the maximum age")
    assert "95% CI" in text and top in text
    lines = text.splitlines()
    readiness = lines[lines.index(next(x for x in lines if x.startswith("value-based"))) + 3]
    assert readiness.split()[0] in {"CompletePayment", "Subscribe", "SubmitForm"}


def test_missing_audit_tables_say_how_to_build_them(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    make_outbox(db, 10)
    (tmp_path / "profiles.yml").write_text(PROFILES_YML)
    target = load_target(profiles_dir_flag=tmp_path, environ={"DBT_DUCKDB_PATH": str(db)}, cwd=tmp_path)
    with pytest.raises(AuditTablesMissing) as caught:
        read_audit(target)
    assert isinstance(caught.value, SenderError) and caught.value.exit_code == EXIT_CONFIG
    assert "dbt build" in str(caught.value) and "tiktok_delivery_health" in str(caught.value)
    assert audit_section(target).startswith("audit: ") and "dbt build" in audit_section(target)
    with pytest.raises(AuditTablesMissing):
        write_report(target, tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_report_is_self_contained_and_escaped(audit: AuditData, built: Built) -> None:
    path = write_report(built.target, built.root / "report.html")
    document = path.read_text(encoding="utf-8")
    assert document.startswith("<!DOCTYPE html>")
    assert "http://" not in document and "https://" not in document
    assert not re.search(r"\b(src|href|xlink:href)\s*=|url\(|@import|<script|<link|<iframe", document, re.I)

    hostile = "<img src=x onerror=alert(1)>"
    poisoned = dataclasses.replace(
        audit, rejections=[{**audit.rejections[0], "reason": hostile}],
        readiness=[{**audit.readiness[0], "event": hostile}],
    )
    document = render_report(poisoned, warehouse=f"duckdb {hostile}")
    assert hostile not in document and html.escape(hostile) in document


# A measurement run inside the page: what Chromium laid out and drew for every chart.
MEASURE = """<script>
window.addEventListener('load', function () {
  var out = {resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
             charts: [], tables: {}};
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var box = svg.getBoundingClientRect(), drawn = 0;
    svg.querySelectorAll('rect, line, circle, path, polygon, polyline').forEach(function (el) {
      var b = el.getBBox();
      if (b.width > 0 || b.height > 0) { drawn += 1; }
    });
    out.charts.push({chart: svg.getAttribute('data-chart'), width: box.width, height: box.height, drawn: drawn,
                     texts: svg.querySelectorAll('text').length, title: svg.querySelector('title').textContent});
  });
  document.querySelectorAll('table[data-table]').forEach(function (t) {
    out.tables[t.getAttribute('data-table')] = t.tBodies[0].rows.length;
  });
  var pre = document.createElement('pre');
  pre.id = 'render-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium_or_skip() -> Path:
    if CHROMIUM.is_file():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package chromium on the CI runner")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium): the report is not checked in a browser")


def test_report_renders_every_chart_in_chromium(audit: AuditData, built: Built, tmp_path: Path) -> None:
    browser = chromium_or_skip()
    document = render_report(audit, warehouse=built.target.describe())
    page = tmp_path / "report.html"
    page.write_text(document.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    proc = subprocess.run(
        [str(browser), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60, check=False,
    )
    found = re.search(r'<pre id="render-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no measurement in Chromium's DOM (exit {proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))

    assert result["resources"] == []  # nothing fetched: the file opens offline
    charts: dict[str, list[dict]] = {}
    for chart in result["charts"]:
        charts.setdefault(chart["chart"], []).append(chart)
        assert chart["width"] > 300 and chart["height"] > 80, chart
        assert chart["texts"] >= 3 and chart["title"], chart  # title, axis labels, ticks
    events = len(audit.latency_latest)
    minimum_drawn = {
        "deliveries": 2 * 3,                          # two runs' stacked bars, grid and axis
        "latency": 3 * events,                        # p50, p90, p99 per event
        "match": 7 * len(audit.match),                # six keys and the coverage per event
        "values": 3 * len({r["event"] for r in audit.values if r["p50_value"] is not None}),
        "rejections": len(audit.rejections),
        "calibration": 2 * 5,                         # predicted and realised, at least 5 deciles
        "readout": 3,                                 # the interval, its ends and the estimate
        "experiments": 3,                             # the finished experiment's interval
        "networks": 2 * len({r["week_start"] for r in audit.network_weeks}),  # ROAS and MER per week
    }
    assert set(charts) == set(minimum_drawn)
    for name, least in minimum_drawn.items():
        assert all(c["drawn"] >= least for c in charts[name]), (name, charts[name])
    assert result["tables"]["readiness"] == len(audit.readiness)
    assert result["tables"]["rejections"] == len(audit.rejections)
    assert result["tables"]["experiments"] == len(audit.experiment_design) == 2


def test_report_and_tables_of_a_warehouse_without_deliveries(audit: AuditData) -> None:
    """Audit models built before the first push: empty delivery figures, no crash, a clear note."""
    quiet = dataclasses.replace(
        audit, health=[], deliveries=[], latency=[], latency_latest=[], rejections=[], readout=[],
        totals={**audit.totals, **dict.fromkeys(("delivered", "rejected", "failed", "expired", "runs"), 0)},
    )
    document = render_report(quiet, warehouse="duckdb")
    assert "No production run yet" in document and "Nothing delivered yet." in document
    assert "No rejected or failed receipt." in document
    assert "(no rows)" in render_audit_tables(quiet)


def test_deliveries_over_several_days_are_bars_per_day(audit: AuditData) -> None:
    days = [
        {"label": f"2026-11-{d:02d}", "period_start": None, "delivered": 10 * d, "rejected": d % 3,
         "failed": 0 if d % 2 else 4, "expired": 1}
        for d in range(1, 29)
    ]
    document = render_report(dataclasses.replace(audit, deliveries=days, delivery_period="day"), warehouse="duckdb")
    chart = re.search(r'<svg class="chart" data-chart="deliveries".*?</svg>', document, re.S).group(0)
    assert "Events per delivery day by outcome" in chart and "delivery day (UTC)" in chart
    segments = sum(1 for d in days for s in ("delivered", "rejected", "failed", "expired") if d[s])
    assert chart.count("<rect") == segments + 4  # and the legend's four swatches


def test_the_geo_experiments_and_networks_read_first(audit: AuditData) -> None:
    """The measurement a marketing analyst reads first opens the report: the geo experiments'
    verdict with its intervals, then the platform's ROAS against the blended MER."""
    document = render_report(audit, warehouse="duckdb")
    sections = re.findall(r'<section id="([a-z-]+)"', document)
    assert sections[:2] == ["experiments", "networks"]
    assert "store-pltv-vs-bau: the treatment geos beat business as usual" in document
    assert "store-pltv-cap: not readable until" in document
    text = render_audit_tables(audit)
    assert "geo experiments (experiment_design, experiment_readout)" in text
    assert "incremental ROAS" in text and "reported by the platform" in text


def test_without_experiments_or_spend_the_sections_say_why(audit: AuditData) -> None:
    bare = dataclasses.replace(audit, experiment_design=[], experiment_readout=[], network_weeks=[],
                               calibration_factors=[])
    document = render_report(bare, warehouse="duckdb")
    assert "No geo experiment registered (source experiments" in document
    assert "No TikTok spend in the ad_spend source." in document
    immature = [{**r, "status": "immature", "lift_ci95_low": None} for r in audit.experiment_readout]
    document = render_report(dataclasses.replace(audit, experiment_readout=immature), warehouse="duckdb")
    assert "No registered geo experiment has matured yet." in document
    assert "store-pltv-vs-bau: not readable until " in document
