"""Read the audit models dbt builds over the receipts and the outbox (models/marts/audit) and
format their key figures as terminal tables for `sender status`.

Everything is read from a read-only connection to the target's warehouse (DuckDB or
PostgreSQL, through `warehouse.open_warehouse`) and returned as plain rows (dicts); the
aggregations done here only reshape what the models hold (sums over days, the latest day per
event). Missing audit tables mean `dbt build` has not run since the models were added, which
`AuditTablesMissing` says in one line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tiktok_sender.errors import WarehouseError
from tiktok_sender.profiles import WarehouseTarget
from tiktok_sender.receipts import RECEIPTS_TABLE, RUNS_TABLE
from tiktok_sender.warehouse import OUTBOX_TABLE, SqlWarehouse, open_warehouse, quote_identifier

Row = dict[str, Any]

AUDIT_MODELS: tuple[str, ...] = (
    "tiktok_delivery_health",
    "tiktok_delivery_latency",
    "tiktok_match_diagnostics",
    "tiktok_value_distribution",
    "tiktok_vbo_readiness",
    "tiktok_schema_drift",
    "pltv_calibration",
    "tiktok_experiment_readout",
)

STATUSES: tuple[str, ...] = ("delivered", "rejected", "failed", "expired")

# (column of tiktok_match_diagnostics, label) in the order the report shows them.
MATCH_KEYS: tuple[tuple[str, str], ...] = (
    ("share_email", "email"),
    ("share_phone", "phone"),
    ("share_external_id", "external id"),
    ("share_ttclid", "ttclid"),
    ("share_ttp", "ttp"),
    ("share_ip_user_agent", "ip + user agent"),
)

# (column of tiktok_vbo_readiness, label) of the readiness checklist.
READINESS_CHECKS: tuple[tuple[str, str], ...] = (
    ("has_volume", "volume"),
    ("has_varying_value", "value"),
    ("has_valid_currency", "currency"),
    ("has_match_coverage", "match"),
    ("has_timely_delivery", "latency"),
)

HEALTH_DAYS = 7
_ITEM_INDEX = re.compile(r"data\.[0-9]+\.")
TOP_REASONS = 10


class AuditTablesMissing(WarehouseError):
    """The audit models are not in the warehouse: `dbt build` has not run since they were added."""


@dataclass(frozen=True)
class AuditData:
    """The audit figures, as plain rows. Row keys are the models' column names unless noted."""

    schema: str
    totals: Row
    """Event-level state of the outbox: outbox, delivered, rejected, expired, failed,
    never_sent, runs (production receipts; an event counts once, at its best receipt)."""
    health: list[Row]
    """tiktok_delivery_health, oldest first."""
    deliveries: list[Row]
    """Bars of the deliveries chart: label, period_start, and one count per status. Per
    delivery day (days without a run filled with zeros) or, when every run happened on one
    day, per run."""
    delivery_period: str
    """`day` or `run`: what one row of `deliveries` stands for."""
    latency: list[Row]
    """tiktok_delivery_latency, oldest first."""
    latency_latest: list[Row]
    """Per event: its latest delivery day's row, plus `worst_p90_hours_7d` (the worst daily p90
    of the last 7 delivery days)."""
    match: list[Row]
    """Per event and source: events and every share weighted by the events of each day."""
    values: list[Row]
    """tiktok_value_distribution rows of `value_week`, per event and cell."""
    value_week: date | None
    """The latest complete conversion week (the current, partial one only when it is the only
    week)."""
    readiness: list[Row]
    drift: list[Row]
    calibration: list[Row]
    """Per model version and decile, over every mature cohort: customers, predicted_total,
    realised_total, predicted_mean, realised_mean, calibration_ratio."""
    calibration_versions: list[Row]
    """Per model version: cohorts, first_cohort, last_cohort, customers, predicted_total,
    realised_total, calibration_ratio."""
    readout: list[Row]
    rejections: list[Row]
    """Top reasons events ended a run rejected or failed: status, api_code, reason (api_message
    with item indexes removed), events, runs, last_seen_at."""
    today: date = field(default_factory=lambda: datetime.now(UTC).date())


# -- reading ------------------------------------------------------------------------------------


def connect(target: WarehouseTarget) -> SqlWarehouse:
    """The target's warehouse, opened read-only (no delivery lease)."""
    return open_warehouse(target, read_only=True)


def _tables(con: SqlWarehouse, schema: str) -> set[str]:
    _, rows = con.query(
        f"select table_name from information_schema.tables where table_schema = {con.dialect.param}",
        [schema],
    )
    return {r[0] for r in rows}


def check_audit_tables(con: SqlWarehouse, schema: str) -> None:
    """Raise AuditTablesMissing naming every audit model that is not in `schema`."""
    missing = [m for m in AUDIT_MODELS if m not in _tables(con, schema)]
    if missing:
        raise AuditTablesMissing(
            f"audit table(s) not found in schema {schema}: {', '.join(missing)} "
            "(run `dbt build`, or `dbt build --selector audit`, after `sender push` to build them)"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rows(con: SqlWarehouse, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    names, rows = con.query(sql, params)
    return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in rows]


def _num(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _weighted(rows: Iterable[Row], column: str, weight: str) -> float | None:
    total = weighted = 0.0
    for row in rows:
        if row.get(column) is None:
            continue
        total += _num(row.get(weight))
        weighted += _num(row[column]) * _num(row.get(weight))
    return weighted / total if total else None


def _dated(health: list[Row], today: date) -> list[Row]:
    """Every row with a delivery day. Expired events are never sent, so their row may have
    none: it joins its run's row of the day the run started."""
    merged: dict[tuple[date, str], Row] = {}
    for row in health:
        day = row.get("delivery_date")
        if day is None:
            started = row.get("run_started_at")
            day = started.date() if isinstance(started, datetime) else today
        key = (day, row["run_id"])
        if key not in merged:
            merged[key] = {**row, "delivery_date": day}
            continue
        into = merged[key]
        for column in ("events", "events_sent", "attempts", *STATUSES):
            into[column] = int(_num(into.get(column))) + int(_num(row.get(column)))
        if _num(row.get("top_error_events")) > _num(into.get("top_error_events")):
            for column in ("top_error_code", "top_error_message", "top_error_events"):
                into[column] = row.get(column)
        settled = into["delivered"] + into["rejected"] + into["failed"]
        into["success_rate"] = into["delivered"] / settled if settled else None
    return sorted(
        merged.values(), key=lambda r: (r["delivery_date"], r.get("run_started_at") or datetime.min)
    )


def _deliveries(health: list[Row]) -> tuple[list[Row], str]:
    days = sorted({r["delivery_date"] for r in health if r.get("delivery_date") is not None})
    if len(days) == 1:  # one day: a bar per run says more than a single bar
        runs: dict[str, Row] = {}
        for r in sorted(
            health, key=lambda r: (r.get("run_started_at") or datetime.min, r["run_id"])
        ):
            started = r.get("run_started_at")
            label = (
                started.strftime("%H:%M:%S")
                if isinstance(started, datetime)
                else str(r["run_id"])[:8]
            )
            bar = runs.setdefault(
                r["run_id"], {"label": label, "period_start": started, **dict.fromkeys(STATUSES, 0)}
            )
            for status in STATUSES:
                bar[status] += int(_num(r.get(status)))
        return list(runs.values()), "run"
    bars: list[Row] = []
    if days:
        by_day: dict[date, Row] = {}
        day = days[0]
        while day <= days[-1]:
            by_day[day] = {
                "label": day.isoformat(),
                "period_start": day,
                **dict.fromkeys(STATUSES, 0),
            }
            day += timedelta(days=1)
        for r in health:
            for status in STATUSES:
                by_day[r["delivery_date"]][status] += int(_num(r.get(status)))
        bars = list(by_day.values())
    return bars, "day"


def _latency_latest(latency: list[Row], today: date) -> list[Row]:
    since = today - timedelta(days=HEALTH_DAYS - 1)
    latest: dict[str, Row] = {}
    for r in latency:
        if r["event"] not in latest or r["delivery_date"] > latest[r["event"]]["delivery_date"]:
            latest[r["event"]] = r
    out = []
    for event, row in sorted(latest.items()):
        recent = [
            r["p90_hours"]
            for r in latency
            if r["event"] == event
            and r["delivery_date"] >= since
            and r.get("p90_hours") is not None
        ]
        out.append({**row, "worst_p90_hours_7d": max(recent) if recent else None})
    return out


def _match(diagnostics: list[Row]) -> list[Row]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in diagnostics:
        groups.setdefault((r["event"], r["event_source"]), []).append(r)
    out = []
    for (event, source), rows in sorted(groups.items()):
        row: Row = {
            "event": event,
            "event_source": source,
            "events": sum(int(_num(r["events"])) for r in rows),
        }
        for column in [c for c, _ in MATCH_KEYS] + ["avg_keys_per_event", "match_coverage"]:
            row[column] = _weighted(rows, column, "events")
        out.append(row)
    out.sort(key=lambda r: -r["events"])
    return out


def _value_week(distribution: list[Row]) -> date | None:
    weeks = sorted(
        {r["conversion_week"] for r in distribution if r.get("conversion_week") is not None}
    )
    if not weeks:
        return None
    return weeks[-2] if len(weeks) > 1 else weeks[-1]


def _calibration(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    deciles: dict[tuple[str, int], Row] = {}
    versions: dict[str, Row] = {}
    for r in rows:
        key = (r["model_version"], int(r["predicted_decile"]))
        d = deciles.setdefault(
            key,
            {
                "model_version": key[0],
                "predicted_decile": key[1],
                "customers": 0,
                "predicted_total": 0.0,
                "realised_total": 0.0,
            },
        )
        v = versions.setdefault(
            r["model_version"],
            {
                "model_version": r["model_version"],
                "cohorts": set(),
                "customers": 0,
                "predicted_total": 0.0,
                "realised_total": 0.0,
            },
        )
        for agg in (d, v):
            agg["customers"] += int(_num(r["customers"]))
            agg["predicted_total"] += _num(r["predicted_total"])
            agg["realised_total"] += _num(r["realised_total"])
        v["cohorts"].add(r["cohort_month"])
    for d in deciles.values():
        d["predicted_mean"] = d["predicted_total"] / d["customers"] if d["customers"] else None
        d["realised_mean"] = d["realised_total"] / d["customers"] if d["customers"] else None
    for v in versions.values():
        cohorts = sorted(v.pop("cohorts"))
        v.update(cohorts=len(cohorts), first_cohort=cohorts[0], last_cohort=cohorts[-1])
    for agg in [*deciles.values(), *versions.values()]:
        agg["calibration_ratio"] = (
            agg["realised_total"] / agg["predicted_total"] if agg["predicted_total"] else None
        )
    return sorted(
        deciles.values(), key=lambda d: (d["model_version"], d["predicted_decile"])
    ), sorted(versions.values(), key=lambda v: v["model_version"])


def _totals(con: SqlWarehouse, schema: str, tables: set[str]) -> Row:
    q = quote_identifier(schema)
    outbox = f"{q}.{quote_identifier(OUTBOX_TABLE)}"
    totals: Row = dict.fromkeys(("outbox", "never_sent", "runs", *STATUSES), 0)
    if OUTBOX_TABLE in tables:
        _, rows = con.query(f"select count(*) from {outbox}")
        totals["outbox"] = totals["never_sent"] = int(rows[0][0])
    if RECEIPTS_TABLE in tables and OUTBOX_TABLE in tables:
        receipts = f"{q}.{quote_identifier(RECEIPTS_TABLE)}"
        _, rows = con.query(
            f"""
            with best as (
                select event_source_id, event, event_id,
                       min(case status when 'delivered' then 1 when 'rejected' then 2
                                       when 'expired' then 3 else 4 end) as rank
                from {receipts}
                where test_event_code is null
                group by event_source_id, event, event_id
            )
            select coalesce(best.rank, 0), count(*)
            from {outbox} as o
            left join best using (event_source_id, event, event_id)
            group by 1
            """
        )
        totals["never_sent"] = 0
        names = {0: "never_sent", 1: "delivered", 2: "rejected", 3: "expired", 4: "failed"}
        for rank, count in rows:
            totals[names.get(int(rank), "failed")] = int(count)
    if RUNS_TABLE in tables:
        _, rows = con.query(
            f"select count(*) from {q}.{quote_identifier(RUNS_TABLE)} where not coalesce(dry_run, false)"
        )
        totals["runs"] = int(rows[0][0])
    return totals


def _rejections(con: SqlWarehouse, schema: str, tables: set[str]) -> list[Row]:
    """Why events ended a run rejected or failed: per event and run, the receipt that decided it
    (its rejection, else its last failed attempt). Attempts that failed before the event was
    delivered in the same run are left out."""
    if RECEIPTS_TABLE not in tables:
        return []
    receipts = f"{quote_identifier(schema)}.{quote_identifier(RECEIPTS_TABLE)}"
    return _rows(
        con,
        f"""
        with outcomes as (
            select *,
                   min(case status when 'delivered' then 1 when 'rejected' then 2
                                   when 'expired' then 3 else 4 end)
                       over (partition by run_id, event_source_id, event, event_id) as outcome
            from {receipts}
            where test_event_code is null
        ),
        deciding as (
            select *,
                   row_number() over (
                       partition by run_id, event_source_id, event, event_id
                       order by sent_at desc nulls last, receipt_id desc
                   ) as pick
            from outcomes
            where (outcome = 2 and status = 'rejected') or (outcome = 4 and status = 'failed')
        )
        select status,
               api_code,
               regexp_replace(coalesce(api_message, '(no message)'), 'data\\.[0-9]+\\.', 'data.N.', 'g')
                   as reason,
               count(distinct (event_source_id, event, event_id)) as events,
               count(distinct run_id) as runs,
               max(sent_at) as last_seen_at
        from deciding
        where pick = 1
        group by 1, 2, 3
        order by events desc, runs desc, reason
        limit {TOP_REASONS}
        """,
    )


def load_audit(con: SqlWarehouse, schema: str, *, today: date | None = None) -> AuditData:
    """Read every audit model of `schema`; raises AuditTablesMissing when one is not built."""
    today = today or datetime.now(UTC).date()
    q = quote_identifier(schema)

    def table(name: str, order: str) -> list[Row]:
        return _rows(con, f"select * from {q}.{quote_identifier(name)} order by {order}")

    try:
        check_audit_tables(con, schema)
        tables = _tables(con, schema)
        health = table("tiktok_delivery_health", "run_started_at, delivery_date, run_id")
        latency = table("tiktok_delivery_latency", "delivery_date, event")
        diagnostics = table("tiktok_match_diagnostics", "conversion_date, event, event_source")
        distribution = table("tiktok_value_distribution", "event, experiment_cell, conversion_week")
        readiness = table("tiktok_vbo_readiness", "event, event_source")
        drift = table("tiktok_schema_drift", "event, event_source")
        calibration = table("pltv_calibration", "model_version, cohort_month, predicted_decile")
        readout = table("tiktok_experiment_readout", "experiment_cell desc")
        totals = _totals(con, schema, tables)
        rejections = _rejections(con, schema, tables)
    except con.driver_errors as exc:
        raise WarehouseError(f"reading the audit tables failed: {con.error_text(exc)}") from None

    health = _dated(health, today)
    deliveries, period = _deliveries(health)
    week = _value_week(distribution)
    deciles, versions = _calibration(calibration)
    return AuditData(
        schema=schema,
        totals=totals,
        health=health,
        deliveries=deliveries,
        delivery_period=period,
        latency=latency,
        latency_latest=_latency_latest(latency, today),
        match=_match(diagnostics),
        values=[r for r in distribution if r["conversion_week"] == week],
        value_week=week,
        readiness=readiness,
        drift=drift,
        calibration=deciles,
        calibration_versions=versions,
        readout=readout,
        rejections=rejections,
        today=today,
    )


def read_audit(target: WarehouseTarget, *, today: date | None = None) -> AuditData:
    """Open the target read-only, read the audit models, close."""
    con = connect(target)
    try:
        return load_audit(con, target.schema, today=today)
    finally:
        con.close()


# -- terminal tables ----------------------------------------------------------------------------


def fmt_count(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def fmt_share(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


def fmt_hours(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f} h"


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
        d["events"] += int(_num(r["events"]))
        for status in STATUSES:
            d[status] += int(_num(r.get(status)))
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
        ]
        for r in audit.match
    ]
    return text_table(
        "match keys per event, every outboxed conversion (tiktok_match_diagnostics)",
        ["event", "source", "events", *(label for _, label in MATCH_KEYS), "coverage"],
        rows,
        right=range(2, 10),
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
            "top_rejections": audit.rejections,
        }
    )


def audit_json(target: WarehouseTarget) -> dict[str, Any]:
    """`audit_dict` of the target, or `{"missing": "<how to build them>"}` without audit tables."""
    try:
        return audit_dict(read_audit(target))
    except AuditTablesMissing as exc:
        return {"missing": str(exc)}
