"""The tables of `sender report`, as data for the template (`templates/tables.html.j2`): per
section, the `Table` of its figures of `read.AuditData` (runs, latency, values, readiness,
rejections, schema drift, calibration and its suggested factors, experiment readout, geo
experiments, networks), and the notes that go with them, as plain text.
A cell is plain text, which the template escapes, or `Markup` built here from escaped parts (a
mark, a badge, a line break, code). A pass or a fail is a mark with a word beside it, colour is
never the only signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from tiktok_sender.audit.read import MATCH_KEYS, READINESS_CHECKS, STATUSES, AuditData
from tiktok_sender.audit.text import (
    fmt_amount,
    fmt_count,
    fmt_hours,
    fmt_quality,
    fmt_ratio,
    fmt_share,
    geo_verdict,
    readout_verdict,
    without_indexes,
)

Cell = str  # plain text (escaped by the template) or Markup


@dataclass(frozen=True)
class Table:
    """An HTML table to render: `numeric` columns right-aligned; without rows, the note `empty`
    (nothing when it is empty too)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    numeric: frozenset[int]
    name: str
    empty: str


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    numeric: Sequence[int] = (),
    name: str = "",
    empty: str = "No rows.",
) -> Table:
    return Table(headers, rows, frozenset(numeric), name, empty)


def _e(value: Any) -> str:
    """A value as text, NULL as `-`."""
    return "-" if value is None else str(value)


def _mark(ok: Any, passed: str = "pass", failed: str = "fail") -> Cell:
    """A check mark or a cross, with the word beside it (colour is never the only signal)."""
    if ok is None:
        return "-"
    if ok:
        return Markup('<span class="pass">&#10003; {}</span>').format(passed)
    return Markup('<span class="fail">&#10007; {}</span>').format(failed)


def readiness_table(audit: AuditData) -> Table:
    """The readiness checklist per anchor event (tiktok_vbo_readiness)."""
    rows = []
    for r in audit.readiness:
        ready = (
            Markup('<span class="badge pass">ready</span>')
            if r["is_ready"]
            else Markup('<span class="badge fail">not ready</span>')
        )
        reasons = [s.strip() for s in (r.get("not_ready_reasons") or "").split(";") if s.strip()]
        rows.append(
            [
                str(r["event"]),
                str(r["event_source"]),
                ready,
                fmt_count(r["weekly_events"]),
                *(_mark(r[c]) for c, _ in READINESS_CHECKS),
                Markup("<br>").join(reasons) or "-",
            ]
        )
    return table(
        [
            "event",
            "source",
            "verdict",
            "events 7d",
            *(label for _, label in READINESS_CHECKS),
            "reasons",
        ],
        rows,
        numeric=(3,),
        name="readiness",
        empty="No anchor event in the mapping.",
    )


def runs_table(audit: AuditData) -> Table:
    """The 12 latest rows of tiktok_delivery_health (a run on a delivery day), newest first."""
    runs = [
        [
            _e(r["delivery_date"]),
            Markup("<code>{}</code>").format(str(r["run_id"])[:12]),
            _e(r.get("run_outcome")),
            fmt_count(r["events"]),
            *(fmt_count(r[s]) for s in STATUSES),
            fmt_share(r["success_rate"]),
            _e(
                " ".join(
                    str(x)
                    for x in (r.get("top_error_code"), without_indexes(r.get("top_error_message")))
                    if x is not None
                )
                or "-"
            ),
        ]
        for r in list(reversed(audit.health))[:12]
    ]
    return table(
        ["day", "run", "outcome", "events", *STATUSES, "success", "top error"],
        runs,
        numeric=range(3, 9),
        name="runs",
    )


def latency_table(audit: AuditData) -> Table:
    """Latency of each event's latest delivery day, against the goal (tiktok_delivery_latency)."""
    latency_rows = [
        [
            _e(r["event"]),
            _e(r["delivery_date"]),
            fmt_count(r["events_delivered"]),
            fmt_hours(r["p50_hours"]),
            fmt_hours(r["p90_hours"]),
            fmt_hours(r["p99_hours"]),
            fmt_share(r["share_within_goal"]),
            fmt_hours(r["worst_p90_hours_7d"]),
            _mark(r["is_p90_within_goal"]),
        ]
        for r in audit.latency_latest
    ]
    return table(
        [
            "event",
            "day",
            "delivered",
            "p50",
            "p90",
            "p99",
            "within goal",
            "worst p90, 7 days",
            "p90 within goal",
        ],
        latency_rows,
        numeric=range(2, 8),
        name="latency",
    )


def match_table(audit: AuditData) -> Table:
    """Coverage of every match key and the match-quality estimate per event
    (tiktok_match_diagnostics, weighted over the conversion days)."""
    rows = [
        [
            _e(r["event"]),
            _e(r["event_source"]),
            fmt_count(r["events"]),
            *(fmt_share(r[c]) for c, _ in MATCH_KEYS),
            fmt_share(r["match_coverage"]),
            fmt_quality(r.get("avg_match_quality")),
            fmt_share(r.get("share_strong_match")),
            fmt_share(r.get("share_limited_data_use")),
        ]
        for r in audit.match
    ]
    return table(
        ["event", "source", "events", *(label for _, label in MATCH_KEYS), "coverage",
         "match quality (0-10)", "strong match", "limited data use"],
        rows,
        numeric=range(2, 3 + len(MATCH_KEYS) + 4),
        name="match",
        empty="",
    )


def valueless_note(audit: AuditData) -> list[str]:
    """A note naming the events sent without a value in the value week, if any."""
    valueless = sorted(
        {r["event"] for r in audit.values}
        - {r["event"] for r in audit.values if r.get("events_with_value")}
    )
    return [f"Sent without a value: {', '.join(valueless)}."] if valueless else []


def values_table(audit: AuditData) -> Table:
    """Values per event and cell of the value week (tiktok_value_distribution)."""
    value_rows = [
        [
            _e(r["event"]),
            _e(r["experiment_cell"]),
            fmt_count(r["events"]),
            fmt_amount(r["mean_value"]),
            fmt_ratio(r["coefficient_of_variation"]),
            fmt_share(r["share_zero"]),
            fmt_share(r["share_capped"]),
            "-"
            if r.get("week_over_week_drift") is None
            else f"{float(r['week_over_week_drift']) * 100:+.1f}%",
        ]
        for r in audit.values
        if r.get("events_with_value")
    ]
    return table(
        ["event", "cell", "events", "mean", "cv", "zero", "capped", "vs previous week"],
        value_rows,
        numeric=range(2, 8),
        name="values",
    )


def rejections_table(audit: AuditData) -> Table:
    """The top rejection and failure reasons; nothing when there is none (the chart says so)."""
    rejection_rows = [
        [
            _e(r["status"]),
            _e(r["api_code"]),
            _e(r["reason"]),
            fmt_count(r["events"]),
            fmt_count(r["runs"]),
            _e(f"{r['last_seen_at']:%Y-%m-%d %H:%M}" if r.get("last_seen_at") else None),
        ]
        for r in audit.rejections
    ]
    return table(
        ["status", "code", "reason", "events", "runs", "last seen (UTC)"],
        rejection_rows,
        numeric=(3, 4),
        name="rejections",
        empty="",
    )


def drift_table(audit: AuditData) -> Table:
    """Events in the outbox against the event mapping (tiktok_schema_drift)."""
    drift_rows = [
        [
            _e(r["event"]),
            _e(r["event_source"]),
            "yes" if r["is_mapped"] else "no",
            "yes" if r["is_value_anchor"] else "no",
            fmt_count(r["events_last_7_days"]),
            fmt_count(r["days_since_seen"]),
            _mark(r["drift_status"] == "ok", "ok", str(r["drift_status"])),
        ]
        for r in audit.drift
    ]
    return table(
        ["event", "source", "mapped", "anchor", "events 7d", "days since seen", "status"],
        drift_rows,
        numeric=(4, 5),
        name="drift",
    )


def calibration_table(audit: AuditData) -> Table:
    """pLTV calibration per model version over its mature cohorts (pltv_calibration)."""
    calibration_rows = [
        [
            _e(v["model_version"]),
            fmt_count(v["cohorts"]),
            _e(f"{v['first_cohort']:%Y-%m} to {v['last_cohort']:%Y-%m}"),
            fmt_count(v["customers"]),
            fmt_amount(v["predicted_total"]),
            fmt_amount(v["realised_total"]),
            fmt_ratio(v["calibration_ratio"]),
        ]
        for v in audit.calibration_versions
    ]
    return table(
        [
            "model version",
            "cohorts",
            "months",
            "customers",
            "predicted",
            "realised",
            "ratio",
        ],
        calibration_rows,
        numeric=(1, 3, 4, 5, 6),
        name="calibration",
    )


def readout_verdicts(audit: AuditData) -> list[str]:
    """One note per cell compared with the holdout: is the difference significant."""
    return [readout_verdict(r) for r in audit.readout if r.get("difference_ci95_low") is not None]


def readout_table(audit: AuditData) -> Table:
    """Revenue per customer per cell against the holdout (tiktok_experiment_readout)."""
    readout_rows = [
        [
            _e(r["experiment_cell"]),
            fmt_count(r["customers"]),
            fmt_count(r["events_delivered"]),
            fmt_amount(r["revenue_per_customer"]),
            fmt_amount(r["revenue_stddev"]),
            fmt_amount(r["difference_vs_holdout"], True),
            "-"
            if r.get("difference_ci95_low") is None
            else f"{fmt_amount(r['difference_ci95_low'], True)} to {fmt_amount(r['difference_ci95_high'], True)}",
            "-" if r.get("relative_lift") is None else f"{float(r['relative_lift']) * 100:+.1f}%",
        ]
        for r in audit.readout
    ]
    return table(
        [
            "cell",
            "customers",
            "events delivered",
            "revenue / customer",
            "stddev",
            "vs holdout",
            "95% CI",
            "lift",
        ],
        readout_rows,
        numeric=range(1, 8),
        name="readout",
    )


def geo_verdicts(audit: AuditData) -> list[str]:
    """One note per registered geo experiment: until when it matures, or what it proved."""
    return [geo_verdict(r) for r in audit.experiment_readout]


def _with_interval(row: dict[str, Any], key: str, fmt: Any, interval: str | None = None) -> str:
    """`key` of the row with its 95% interval (`interval`_ci95_low and _high, `interval`
    defaulting to `key`), or - without one."""
    interval = interval or key
    if row.get(f"{interval}_ci95_low") is None:
        return "-"
    return f"{fmt(row[key])} ({fmt(row[f'{interval}_ci95_low'])} to {fmt(row[f'{interval}_ci95_high'])})"


def _percent(value: Any) -> str:
    return f"{float(value) * 100:+.0f}%"


def experiments_table(audit: AuditData) -> Table:
    """Design and readout of every registered geo experiment (experiment_design, experiment_readout)."""
    readouts = {r["experiment_id"]: r for r in audit.experiment_readout}
    rows = []
    for d in audit.experiment_design:
        r = readouts.get(d["experiment_id"], {})
        window = f"{d['started_at']:%Y-%m-%d} +{(d['ended_at'] - d['started_at']).days} d"
        rows.append([
            _e(d["experiment_id"]),
            _e(window),
            _e(d["status"]),
            f"{fmt_count(d['units_treatment'])} / {fmt_count(d['units_control'])}",
            Markup("{} ({})").format(_mark(d["is_balanced"], "balanced", "unbalanced"),
                                     fmt_ratio(d["standardized_difference"])),
            f"{fmt_share(d['mde_lift'])} / {fmt_ratio(d['mde_roas'])}",
            _with_interval(r, "incremental_revenue", lambda v: f"{float(v):+,.0f}", "incremental"),
            _with_interval(r, "lift", _percent),
            _with_interval(r, "incremental_roas", fmt_ratio),
            fmt_ratio(r.get("platform_roas")),
            _e(f"{d['readable_from']:%Y-%m-%d}"),
        ])
    return table(
        ["experiment", "window", "status", "units T / C", "pre-period balance", "detects lift / ROAS",
         "incremental revenue (95% CI)", "lift (95% CI)", "incremental ROAS (95% CI)", "platform ROAS",
         "readable from"],
        rows,
        numeric=(3, 6, 7, 8, 9),
        name="experiments",
    )


NETWORK_TABLE_WEEKS = 4


def networks_table(audit: AuditData) -> Table:
    """Per week and network of the NETWORK_TABLE_WEEKS latest weeks (the chart shows more):
    spend, the network's reported ROAS and share of spend, and the week's MER
    (marketing_network_weekly)."""
    weeks = sorted({r["week_start"] for r in audit.network_weeks})[-NETWORK_TABLE_WEEKS:]
    rows = [
        [
            _e(f"{r['week_start']:%Y-%m-%d}"),
            _e(r["network"]),
            fmt_amount(r["spend"]),
            fmt_share(r["spend_share"]),
            fmt_ratio(r["platform_roas"]),
            fmt_amount(r["blended_revenue"]),
            fmt_ratio(r["mer"]),
        ]
        for r in audit.network_weeks
        if r["week_start"] in weeks
    ]
    return table(
        ["week", "network", "spend", "share of spend", "platform ROAS", "blended revenue", "MER"],
        rows,
        numeric=(2, 3, 4, 5, 6),
        name="networks",
    )


def factors_table(audit: AuditData) -> Table:
    """The calibration factors the matured scores suggest, against the ones in force
    (pltv_calibration_factors_suggested)."""
    rows = [
        [
            _e(r["model_version"]),
            _e(r["business_model"]),
            _e(r["country_code"]),
            fmt_count(r["customers"]),
            fmt_ratio(r["current_factor"]),
            fmt_ratio(r["calibration_factor"]),
            _e(r["basis"]),
        ]
        for r in audit.calibration_factors
    ]
    return table(
        ["model version", "business model", "country", "matured customers", "factor in force", "suggested",
         "basis"],
        rows,
        numeric=(3, 4, 5),
        name="calibration-factors",
    )
