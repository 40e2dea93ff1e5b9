"""The audit models and monitors over a real delivery: the demo project is built, pushed with
`sender push` to the emulator on 127.0.0.1 (with a few events rejected), and the audit models are
rebuilt from the receipts. Every audit model must have rows, say something true about that
delivery, and the monitors must both pass and fail on cue."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from dbt_harness import PROJECT_ROOT, copy_project, dbt_env, run_dbt
from tiktok_emulator import EmulatorThread
from tiktok_emulator.faults import FaultSpec
from tiktok_sender.settings import Secret

SCHEMA = "tiktok"
TOKEN = "audit-test-token"
AUDIT_MODELS = (
    "tiktok_delivery_health", "tiktok_delivery_latency", "tiktok_match_diagnostics",
    "tiktok_value_distribution", "tiktok_vbo_readiness", "tiktok_schema_drift",
    "pltv_calibration", "pltv_calibration_factors_suggested", "tiktok_experiment_readout",
    "marketing_network_weekly", "experiment_design", "experiment_readout",
)
REJECTED = 5


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def audited(demo_warehouse: Path) -> Path:
    path = demo_warehouse
    rejected = [row[0] for row in query(
        path, f"select event_id from {SCHEMA}.tiktok_events_outbox order by event_id limit {REJECTED}"
    )]
    faults = FaultSpec.parse("reject=" + "|".join(rejected))
    with EmulatorThread(token=Secret(TOKEN), faults=faults) as emulator:
        env = {**dbt_env(path), "TIKTOK_ACCESS_TOKEN": TOKEN, "TIKTOK_API_URL": emulator.url}
        push = subprocess.run(
            [str(Path(sys.executable).parent / "sender"), "push", "--max-failure-rate", "0.01"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False,
        )
        assert push.returncode == 0, push.stdout + push.stderr
    run_dbt(["build", "--selector", "audit"], path)
    return path


@pytest.mark.parametrize("model", AUDIT_MODELS)
def test_every_audit_model_has_rows(audited, model):
    assert query(audited, f"select count(*) from {SCHEMA}.{model}")[0][0] > 0


def test_network_readout_shows_platform_roas_up_and_mer_down(audited):
    """The demo's planted pattern as an analyst reads it: over the last 8 complete weeks TikTok's
    reported ROAS and spend share rise while MER falls, and every network claims more than its
    share of the blended revenue over the year."""
    rows = query(audited, f"""
        with ranked as (
            select *, dense_rank() over (order by week_start desc) as weeks_back
            from {SCHEMA}.marketing_network_weekly
            where days_with_spend = 7
        )
        select network, weeks_back <= 8 as is_recent,
            sum(platform_conversion_value) / sum(spend), sum(spend) / sum(total_spend),
            sum(blended_revenue) / sum(total_spend), sum(platform_conversion_value) / sum(blended_revenue * spend_share)
        from ranked group by all
    """)
    by = {(network, recent): figures for network, recent, *figures in rows}
    assert {network for network, _ in by} == {"tiktok", "meta", "google"}
    (roas_before, share_before, mer_before, _), (roas_recent, share_recent, mer_recent, _) = (
        by[("tiktok", False)], by[("tiktok", True)])
    assert roas_recent > 1.3 * roas_before and share_recent > 1.3 * share_before
    assert mer_recent < 0.8 * mer_before
    assert all(figures[3] > 1 for figures in by.values())  # claimed value / fair share of revenue
    (unconverted,) = query(audited, f"select sum(spend_rows_without_fx_rate) from {SCHEMA}.marketing_network_weekly")[0]
    assert unconverted == 0


def test_delivery_health_counts_the_push(audited):
    (outbox,) = query(audited, f"select count(*) from {SCHEMA}.tiktok_events_outbox")[0]
    rows = query(
        audited,
        f"""select events, delivered, rejected, failed, success_rate, top_error_code, top_error_events
            from {SCHEMA}.tiktok_delivery_health""",
    )
    assert len(rows) == 1
    events, delivered, rejected, failed, success_rate, code, code_events = rows[0]
    assert (events, delivered, rejected, failed) == (outbox, outbox - REJECTED, REJECTED, 0)
    assert success_rate == pytest.approx((outbox - REJECTED) / outbox)
    assert (code, code_events) == (40002, REJECTED)


def test_latency_spans_the_backfill(audited):
    # the demo outbox holds up to 28 days of conversions, all delivered now
    (p50_min, p99_max) = query(
        audited, f"select min(p50_hours), max(p99_hours) from {SCHEMA}.tiktok_delivery_latency"
    )[0]
    assert 0 < p50_min < p99_max <= 28 * 24 + 1


def test_readiness_covers_every_anchor_with_reasons(audited):
    rows = query(audited, f"select event, is_ready, not_ready_reasons from {SCHEMA}.tiktok_vbo_readiness")
    assert {r[0] for r in rows} == {"CompletePayment", "Subscribe", "SubmitForm"}
    for event, ready, reasons in rows:
        assert ready == (reasons is None), event
        # a backfill delivers days-old conversions: nothing is timely yet
        assert not ready and "latency" in reasons


READINESS_SQL = f"""select event, event_source, treatment_events, weekly_events, min_weekly_events,
           volume_rule, has_volume, worst_daily_p90_hours, not_ready_reasons
    from {SCHEMA}.tiktok_vbo_readiness"""


def rebuild_readiness(audited: Path, tmp_path: Path, variables: dict[str, object]) -> dict[tuple, tuple]:
    """Readiness rebuilt on a copy of the audited warehouse with pinned vars, by (event, source)."""
    copy = tmp_path / audited.name  # DuckDB names the catalog after the file
    shutil.copyfile(audited, copy)
    run_dbt(["run", "--select", "tiktok_vbo_readiness", "--vars", json.dumps(variables)], copy)
    return {(r[0], r[1]): r[2:] for r in query(copy, READINESS_SQL)}


def test_readiness_counts_treatment_events_tiktok_would_see(audited, tmp_path):
    as_of = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    window = f"converted_at > timestamp '{as_of}' - interval 7 day and converted_at <= timestamp '{as_of}'"
    qualifies = "value > 0 and currency is not null and (event_source = 'app' or ttclid is not null)"
    counted = {(r[0], r[1]): r[2:] for r in query(audited, f"""
        select event, event_source,
               count(*) filter (where experiment_cell = 'treatment'),
               count(*) filter (where experiment_cell = 'treatment' and {qualifies}),
               count(*) filter (where experiment_cell = 'holdout' and {qualifies})
        from {SCHEMA}.tiktok_events_outbox
        where is_value_anchor and {window}
        group by event, event_source""")}
    # the demo's holdout has qualifying events of its own: they must not count
    assert counted[("CompletePayment", "web")][2] > 0 and counted[("Subscribe", "app")][2] > 0

    rows = rebuild_readiness(audited, tmp_path, {"tiktok_as_of": str(as_of)})
    assert set(rows) == set(counted)
    for key, (treatment, weekly, minimum, rule, has_volume, p90, reasons) in rows.items():
        assert (treatment, weekly) == counted[key][:2], key
        assert (minimum, rule) == ((30, "more than") if key[1] == "app" else (20, "at least")), key
        assert has_volume == (weekly > minimum if key[1] == "app" else weekly >= minimum), key
        # the backfill was delivered just now: the treatment's latency is known and late
        assert p90 > 24 and "latency: worst daily p90" in reasons, key

    # thresholds pinned to the counts themselves: web passes at equality (>=), app does not (>)
    web, app = counted[("CompletePayment", "web")][1], counted[("Subscribe", "app")][1]
    rows = rebuild_readiness(audited, tmp_path, {
        "tiktok_as_of": str(as_of), "tiktok_vbo_min_web_events": web, "tiktok_vbo_min_app_events": app,
    })
    assert rows[("CompletePayment", "web")][4] is True
    assert "volume" not in (rows[("CompletePayment", "web")][6] or "")
    assert rows[("Subscribe", "app")][4] is False
    assert rows[("Subscribe", "app")][6].startswith(
        f"volume: {app} Subscribe events with value and currency in 7 days (treatment), "
        f"TikTok needs more than {app}; "
    )


def test_schema_drift_sees_every_mapped_event(audited):
    status = dict(query(audited, f"select event, drift_status from {SCHEMA}.tiktok_schema_drift"))
    mapped = ("CompletePayment", "StartTrial", "Subscribe", "SubmitForm", "ActivateWorkspace")
    assert status == dict.fromkeys(mapped, "ok")


def test_calibration_compares_mature_cohorts(audited):
    cohorts, customers, ratio = query(
        audited,
        f"select count(distinct cohort_month), sum(customers), sum(realised_total) / sum(predicted_total) "
        f"from {SCHEMA}.pltv_calibration",
    )[0]
    assert cohorts >= 3 and customers >= 100
    # the demo's older model over-predicts: realised is below predicted, but of the same order
    assert 0.5 < ratio < 1.0


def test_calibration_reads_a_score_only_once_its_horizon_has_passed(audited):
    (early,) = query(
        audited,
        f"""select count(*) from {SCHEMA}.int_pltv_calibration_customers
            where scored_at + to_days(horizon_days) > (select max(evaluated_at)
                                                      from {SCHEMA}.int_tiktok_events_candidates)""",
    )[0]
    assert early == 0
    # the demo's scores have a 365-day horizon, and its history 18 months: only the first months matured
    (last_scored,) = query(audited, f"select max(scored_at) from {SCHEMA}.int_pltv_calibration_customers")[0]
    assert last_scored < datetime.now(UTC).replace(tzinfo=None) - timedelta(days=365)


SUGGESTED_SQL = f"""select model_version, business_model, country_code, calibration_factor, current_factor,
                           basis, customers
                    from {SCHEMA}.pltv_calibration_factors_suggested"""


def test_suggested_factors_find_the_older_models_bias(audited):
    rows = {r[:3]: r[3:] for r in query(audited, SUGGESTED_SQL)}
    realised = [key for key, (_, _, basis, _) in rows.items() if basis == "realised"]
    assert realised and {key[0] for key in realised} == {"pltv-2026.06"}  # the newer model has not matured
    # the demo's pltv-2026.06 over-predicts by about 20 %: over the rows suggested, realised / predicted
    # comes near 1 / 1.2
    (predicted, realised_total, customers), = query(audited, f"""
        select sum(predicted_total), sum(realised_total), sum(customers)
        from {SCHEMA}.pltv_calibration_factors_suggested where basis = 'realised'""")
    assert customers >= 100 and 0.7 < realised_total / predicted < 0.95
    # each business model of the older model gets a factor of its own (all have matured customers)
    assert {key[1] for key in realised} >= {"ecommerce", "subscription_app", "saas"}
    # rows without enough evidence stay as the seed has them, with the factor in force
    assert rows[("pltv-2026.10", "*", "*")][2] == "kept"
    assert rows[("*", "*", "*")][:3] == (1, 1.0, "kept")
    assert all(float(factor) == pytest.approx(current) for factor, current, basis, _ in rows.values()
               if basis == "kept")


def test_the_suggested_factors_once_seeded_are_the_factors_in_force(audited, tmp_path):
    """The documented loop: write the suggestion as the seed, `dbt seed`, rebuild. Every row's
    current factor is then the factor suggested, and the rows are the same (the suggestion reads
    raw scores, before any factor, so seeding it does not move it)."""
    suggested = query(audited, SUGGESTED_SQL)
    project = copy_project(tmp_path / "project")
    lines = ["model_version,business_model,country_code,calibration_factor"]
    lines += [f"{r[0]},{r[1]},{r[2]},{r[3]}" for r in sorted(suggested)]
    (project / "seeds" / "reference" / "pltv_calibration_factors.csv").write_text("\n".join(lines) + "\n")
    copy = tmp_path / audited.name
    shutil.copyfile(audited, copy)
    run_dbt(["seed", "--select", "pltv_calibration_factors"], copy, project=project)
    run_dbt(["run", "--select", "pltv_calibration_factors_suggested"], copy, project=project)
    again = query(copy, SUGGESTED_SQL)
    assert {r[:4] for r in again} == {r[:4] for r in suggested}
    assert all(float(r[3]) == pytest.approx(r[4]) for r in again)


def test_readout_difference_has_a_confidence_interval(audited):
    rows = {r[0]: r[1:] for r in query(
        audited,
        f"""select experiment_cell, customers, revenue_per_customer, difference_vs_holdout,
                   difference_ci95_low, difference_ci95_high
            from {SCHEMA}.tiktok_experiment_readout""",
    )}
    assert set(rows) == {"treatment", "holdout"}
    customers, revenue, diff, low, high = rows["treatment"]
    assert customers > rows["holdout"][0] > 20
    assert diff == pytest.approx(revenue - rows["holdout"][1])
    assert low < diff < high


def run_monitors(path: Path, extra_vars: str | None = None) -> subprocess.CompletedProcess[str]:
    dbt = str(Path(sys.executable).parent / "dbt")
    args = [dbt, "test", "--select", "tag:monitor", "--project-dir", str(PROJECT_ROOT)]
    if extra_vars:
        args += ["--vars", extra_vars]
    return subprocess.run(args, cwd=PROJECT_ROOT, env=dbt_env(path), capture_output=True, text=True, check=False)


def failing_monitors(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return {word for line in proc.stdout.splitlines() if " FAIL " in line
            for word in line.split() if word.startswith("monitor_")}


def test_monitors_fail_on_a_late_backfill(audited):
    proc = run_monitors(audited)
    assert proc.returncode != 0
    assert failing_monitors(proc) == {"monitor_delivery_latency"}


def test_monitors_gate_on_success_rate(audited):
    proc = run_monitors(audited, "{tiktok_latency_goal_hours: 100000, tiktok_min_success_rate: 0.9999}")
    assert failing_monitors(proc) == {"monitor_delivery_success_rate"}


def test_monitors_pass_within_thresholds(audited):
    proc = run_monitors(audited, "{tiktok_latency_goal_hours: 100000}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert os.path.exists(audited)


OPTIONAL_SOURCES = ("ad_spend", "consents", "erasure_requests", "event_sources", "experiments", "order_items",
                    "saas_invoices")


def test_every_optional_source_may_be_absent(audited, tmp_path):
    """An advertiser without one of the optional tables: its staging model builds, empty, with
    every column its readers select (macro optional_source)."""
    copy = tmp_path / audited.name
    shutil.copyfile(audited, copy)
    with duckdb.connect(str(copy)) as con:
        (source_schema,) = con.execute(
            "select table_schema from information_schema.tables where table_name = 'consents'").fetchone()
        expected = {t: [c[0] for c in con.execute(f"describe {SCHEMA}.stg_first_party__{t}").fetchall()]
                    for t in OPTIONAL_SOURCES}
        for table in OPTIONAL_SOURCES:
            con.execute(f"drop table {source_schema}.{table}")
    run_dbt(["run", "--select", *(f"stg_first_party__{t}" for t in OPTIONAL_SOURCES)], copy)
    with duckdb.connect(str(copy), read_only=True) as con:
        for table in OPTIONAL_SOURCES:
            assert con.execute(f"select count(*) from {SCHEMA}.stg_first_party__{table}").fetchone() == (0,)
            columns = [c[0] for c in con.execute(f"describe {SCHEMA}.stg_first_party__{table}").fetchall()]
            assert columns == expected[table], table
