"""Format the audit figures (`audit.AuditData`) as plain-text tables and as JSON for
`sender status`: `render_audit_tables` and `audit_dict`, and `audit_section` and `audit_json`,
which read the target's audit models first and, when they are missing, say how to build them.
The value formatters (`fmt_*`), `without_indexes` and `readout_verdict` are shared with the
HTML report (`charts`, `tables`, `report`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from tiktok_sender.audit.read import (
    HEALTH_DAYS,
    MATCH_KEYS,
    READINESS_CHECKS,
    STATUSES,
    AuditData,
    AuditTablesMissing,
    Row,
    read_audit,
)
from tiktok_sender.audit.rollup import num
from tiktok_sender.profiles import WarehouseTarget

_ITEM_INDEX = re.compile(r"data\.[0-9]+\.")


def fmt_count(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def fmt_share(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


def fmt_hours(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f} h"


def fmt_quality(value: Any) -> str:
    """A match-quality estimate (0-10) with one decimal."""
    return "-" if value is None else f"{float(value):.1f}"


def fmt_amount(value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{float(value):+,.2f}" if signed else f"{float(value):,.2f}"


def fmt_ratio(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def fmt_check(value: Any) -> str:
    return "-" if value is None else ("ok" if value else "FAIL")


def without_indexes(message: str | None) -> str | None:
    """`data.3.event_id: ...` -> `data.N.event_id: ...`, so one cause reads as one reason."""
    return None if message is None else _ITEM_INDEX.sub("data.N.", message)


def _clip(text: Any, width: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def text_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()
) -> str:
    """A titled plain-text table; columns whose index is in `right` are right-aligned."""
    if not rows:
        return f"{title}\n  (no rows)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return ("  " + "  ".join(parts)).rstrip()

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([title, line(headers), rule, *(line(r) for r in rows)])


def _health_table(audit: AuditData) -> str:
    since = audit.today - timedelta(days=HEALTH_DAYS - 1)
    days: dict[date, Row] = {}
    for r in audit.health:
        if r["delivery_date"] < since:
            continue
        d = days.setdefault(
            r["delivery_date"],
            {"runs": set(), "events": 0, "errors": {}, **dict.fromkeys(STATUSES, 0)},
        )
        d["runs"].add(r["run_id"])
        d["events"] += int(num(r["events"]))
        for status in STATUSES:
            d[status] += int(num(r.get(status)))
        if r.get("top_error_events"):
            key = (r.get("top_error_code"), without_indexes(r.get("top_error_message")))
            d["errors"][key] = d["errors"].get(key, 0) + int(r["top_error_events"])
    rows = []
    for day, d in sorted(days.items(), reverse=True):
        settled = d["delivered"] + d["rejected"] + d["failed"]
        error = max(d["errors"].items(), key=lambda kv: kv[1])[0] if d["errors"] else None
        rows.append(
            [
                day.isoformat(),
                fmt_count(len(d["runs"])),
                fmt_count(d["events"]),
                *(fmt_count(d[s]) for s in STATUSES),
                fmt_share(d["delivered"] / settled if settled else None),
                _clip(" ".join(str(x) for x in error if x is not None), 60) if error else "",
            ]
        )
    return text_table(
        f"delivery health, last {HEALTH_DAYS} days (tiktok_delivery_health)",
        ["day", "runs", "events", *STATUSES, "success", "top error"],
        rows,
        right=range(1, 8),
    )


def _latency_table(audit: AuditData) -> str:
    rows = [
        [
            r["event"],
            r["delivery_date"].isoformat(),
            fmt_count(r["events_delivered"]),
            fmt_hours(r["p50_hours"]),
            fmt_hours(r["p90_hours"]),
            fmt_hours(r["p99_hours"]),
            fmt_hours(r["latency_goal_hours"]),
            fmt_share(r["share_within_goal"]),
            "yes" if r["is_p90_within_goal"] else "NO",
        ]
        for r in audit.latency_latest
    ]
    return text_table(
        "latency from conversion to delivery, latest delivery day per event (tiktok_delivery_latency)",
        ["event", "day", "delivered", "p50", "p90", "p99", "goal", "within goal", "p90 ok"],
        rows,
        right=range(2, 8),
    )


def _match_table(audit: AuditData) -> str:
    rows = [
        [
            r["event"],
            r["event_source"],
            fmt_count(r["events"]),
            *(fmt_share(r[c]) for c, _ in MATCH_KEYS),
            fmt_share(r["match_coverage"]),
            fmt_quality(r.get("avg_match_quality")),
            fmt_share(r.get("share_strong_match")),
        ]
        for r in audit.match
    ]
    return text_table(
        "match keys per event, every outboxed conversion (tiktok_match_diagnostics; quality: "
        "this project's 0-10 estimate, strong: 6 or more)",
        ["event", "source", "events", *(label for _, label in MATCH_KEYS), "coverage", "quality",
         "strong"],
        rows,
        right=range(2, 3 + len(MATCH_KEYS) + 3),
    )


def _readiness_table(audit: AuditData) -> str:
    rows = [
        [
            r["event"],
            r["event_source"],
            "READY" if r["is_ready"] else "not ready",
            fmt_count(r["weekly_events"]),
            *(fmt_check(r[c]) for c, _ in READINESS_CHECKS),
            (r.get("not_ready_reasons") or "").strip().rstrip(";"),
        ]
        for r in audit.readiness
    ]
    return text_table(
        "value-based optimisation readiness, last 7 days (tiktok_vbo_readiness)",
        [
            "event",
            "source",
            "ready",
            "events 7d",
            *(label for _, label in READINESS_CHECKS),
            "reasons",
        ],
        rows,
        right=(3,),
    )


def _drift_table(audit: AuditData) -> str:
    rows = [
        [
            r["event"],
            r["event_source"],
            "yes" if r["is_mapped"] else "no",
            "yes" if r["is_value_anchor"] else "no",
            fmt_count(r["events_last_7_days"]),
            fmt_count(r["days_since_seen"]),
            r["drift_status"] if r["drift_status"] == "ok" else str(r["drift_status"]).upper(),
        ]
        for r in audit.drift
    ]
    return text_table(
        "schema drift against the event mapping (tiktok_schema_drift)",
        ["event", "source", "mapped", "anchor", "events 7d", "days since seen", "status"],
        rows,
        right=(4, 5),
    )


def _calibration_table(audit: AuditData) -> str:
    rows = [
        [
            v["model_version"],
            fmt_count(v["cohorts"]),
            f"{v['first_cohort']:%Y-%m} .. {v['last_cohort']:%Y-%m}",
            fmt_count(v["customers"]),
            fmt_amount(v["predicted_total"]),
            fmt_amount(v["realised_total"]),
            fmt_ratio(v["calibration_ratio"]),
        ]
        for v in audit.calibration_versions
    ]
    return text_table(
        "pLTV calibration of mature cohorts, realised / predicted (pltv_calibration)",
        ["model version", "cohorts", "months", "customers", "predicted", "realised", "ratio"],
        rows,
        right=(1, 3, 4, 5, 6),
    )


def _readout_table(audit: AuditData) -> str:
    rows = []
    for r in audit.readout:
        ci = (
            f"{fmt_amount(r['difference_ci95_low'], True)} .. {fmt_amount(r['difference_ci95_high'], True)}"
            if r.get("difference_ci95_low") is not None
            else "-"
        )
        rows.append(
            [
                r["experiment_cell"],
                fmt_count(r["readout_window_days"]),
                fmt_count(r["customers"]),
                fmt_count(r["events_delivered"]),
                fmt_amount(r["revenue_per_customer"]),
                fmt_amount(r["difference_vs_holdout"], True),
                ci,
                "-"
                if r.get("relative_lift") is None
                else f"{float(r['relative_lift']) * 100:+.1f}%",
            ]
        )
    table = text_table(
        "experiment readout at the maturity window (tiktok_experiment_readout)",
        [
            "cell",
            "window d",
            "customers",
            "delivered",
            "revenue/cust",
            "vs holdout",
            "95% CI",
            "lift",
        ],
        rows,
        right=range(1, 8),
    )
    verdicts = [
        readout_verdict(r) for r in audit.readout if r.get("difference_ci95_low") is not None
    ]
    return "\n".join([table, *(f"  {v}" for v in verdicts)])


def geo_verdict(row: Mapping[str, Any]) -> str:
    """One sentence on a geo experiment's readout (experiment_readout): until when it matures,
    or whether the treatment geos beat their counterfactual, with the return on the network's
    spend it caused beside the one the network reports."""
    name = row["experiment_id"]
    if row.get("status") == "immature":
        return f"{name}: not readable until {row['readable_from']:%Y-%m-%d} (customers of the window still maturing)"
    if row.get("status") == "too_few_pre_weeks":
        return f"{name}: not read, too few whole matured pre-period weeks (var tiktok_experiment_min_pre_weeks)"
    if row.get("lift_ci95_low") is None:
        return f"{name}: no estimate (no pre-period or window revenue to compare)"
    low, high = row["lift_ci95_low"], row["lift_ci95_high"]
    if low > 0:
        verdict = "the treatment geos beat business as usual"
    elif high < 0:
        verdict = "the treatment geos trail business as usual"
    else:
        verdict = "no significant difference from business as usual"
    text = (f"{name}: {verdict}, lift {float(row['lift']) * 100:+.0f}% "
            f"(95% CI {float(low) * 100:+.0f}% to {float(high) * 100:+.0f}%)")
    if row.get("incremental_roas") is not None:
        text += (f"; incremental ROAS {fmt_ratio(row['incremental_roas'])} "
                 f"({fmt_ratio(row['incremental_roas_ci95_low'])} to {fmt_ratio(row['incremental_roas_ci95_high'])})")
        if row.get("platform_roas") is not None:
            text += f" against {fmt_ratio(row['platform_roas'])} reported by the platform"
    return text


def _experiments_table(audit: AuditData) -> str:
    readouts = {r["experiment_id"]: r for r in audit.experiment_readout}
    rows = []
    for d in audit.experiment_design:
        r = readouts.get(d["experiment_id"], {})
        rows.append([
            d["experiment_id"],
            d["status"],
            f"{fmt_count(d['units_treatment'])} / {fmt_count(d['units_control'])}",
            "yes" if d["is_balanced"] else "NO",
            fmt_share(d["mde_lift"]),
            fmt_amount(r.get("incremental_revenue"), True),
            "-" if r.get("lift") is None else f"{float(r['lift']) * 100:+.0f}%",
            fmt_ratio(r.get("incremental_roas")),
            f"{d['readable_from']:%Y-%m-%d}",
        ])
    table = text_table(
        "geo experiments (experiment_design, experiment_readout)",
        ["experiment", "status", "units T/C", "balanced", "detects", "incremental", "lift", "iROAS",
         "readable from"],
        rows,
        right=(4, 5, 6, 7),
    )
    return "\n".join([table, *(f"  {geo_verdict(r)}" for r in audit.experiment_readout)])


def readout_verdict(row: Mapping[str, Any]) -> str:
    """One sentence on whether the cell's difference against the holdout is significant."""
    low, high = row.get("difference_ci95_low"), row.get("difference_ci95_high")
    if low is None or high is None:
        return f"{row['experiment_cell']}: no holdout to compare with"
    if low > 0:
        verdict = "beats the holdout (95% CI above zero)"
    elif high < 0:
        verdict = "trails the holdout (95% CI below zero)"
    else:
        verdict = "no significant difference from the holdout (95% CI spans zero)"
    return f"{row['experiment_cell']}: {verdict}"


def render_audit_tables(audit: AuditData) -> str:
    """The key audit figures as plain-text tables, for `sender status`."""
    return "\n\n".join(
        [
            _health_table(audit),
            _latency_table(audit),
            _match_table(audit),
            _readiness_table(audit),
            _drift_table(audit),
            _calibration_table(audit),
            _experiments_table(audit),
            _readout_table(audit),
        ]
    )


def audit_section(target: WarehouseTarget) -> str:
    """The audit tables of the target, or one line saying how to build them when missing."""
    try:
        return render_audit_tables(read_audit(target))
    except AuditTablesMissing as exc:
        return f"audit: {exc}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):  # naive UTC, written the way `sender status --json` does
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def audit_dict(audit: AuditData) -> dict[str, Any]:
    """The audit figures `sender status --json` prints (dates as ISO strings)."""
    since = audit.today - timedelta(days=HEALTH_DAYS - 1)
    return _jsonable(
        {
            "totals": audit.totals,
            "delivery_health_7d": [r for r in audit.health if r["delivery_date"] >= since],
            "latency_latest": audit.latency_latest,
            "match": audit.match,
            "readiness": audit.readiness,
            "schema_drift": audit.drift,
            "calibration": audit.calibration_versions,
            "experiment_readout": audit.readout,
            "geo_experiment_design": audit.experiment_design,
            "geo_experiment_readout": audit.experiment_readout,
            "calibration_factors_suggested": audit.calibration_factors,
            "network_weeks": audit.network_weeks,
            "top_rejections": audit.rejections,
        }
    )


def audit_json(target: WarehouseTarget) -> dict[str, Any]:
    """`audit_dict` of the target, or `{"missing": "<how to build them>"}` without audit tables."""
    try:
        return audit_dict(read_audit(target))
    except AuditTablesMissing as exc:
        return {"missing": str(exc)}
