"""Reshape the rows of the audit models into the figures `sender status` and `sender report` show.

Pure functions over plain rows (dicts keyed by the models' column names), no warehouse access:
expired events' rows dated by their run, deliveries summed into bars per day or per run, the
latest latency per event, match-key shares weighted by events, the latest complete value week,
and pLTV calibration summed per decile and per model version. `audit.load_audit` applies them
to what it reads; the column names they rely on are defined here (the statuses are the receipts'
own, `tables.receipts.STATUSES`) and re-exported by `tiktok_sender.audit.read`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from tiktok_sender.tables.receipts import STATUSES

Row = dict[str, Any]

# (column of tiktok_match_diagnostics, label) in the order the report shows them: the keys its
# chart draws, then every other key (tables only).
CHART_KEYS: tuple[tuple[str, str], ...] = (
    ("share_email", "email"),
    ("share_phone", "phone"),
    ("share_external_id", "external id"),
    ("share_ttclid", "ttclid"),
    ("share_ttp", "ttp"),
    ("share_ip_user_agent", "ip + user agent"),
)
MATCH_KEYS: tuple[tuple[str, str], ...] = CHART_KEYS + (
    ("share_idfa", "idfa"),
    ("share_idfv", "idfv"),
    ("share_gaid", "gaid"),
    ("share_att_status", "att status"),
    ("share_name", "name"),
    ("share_zip_code", "zip code"),
    ("share_city", "city"),
    ("share_state", "state"),
    ("share_country", "country"),
    ("share_locale", "locale"),
)

# The days of delivery health `sender status` shows, and the window of `worst_p90_hours_7d`.
HEALTH_DAYS = 7


def num(value: Any) -> float:
    """A count or an amount as a float, NULL as 0."""
    return float(value) if value is not None else 0.0


def weighted(rows: Iterable[Row], column: str, weight: str) -> float | None:
    """The mean of `column` weighted by `weight`, over the rows where `column` is not NULL."""
    total = weighted_sum = 0.0
    for row in rows:
        if row.get(column) is None:
            continue
        total += num(row.get(weight))
        weighted_sum += num(row[column]) * num(row.get(weight))
    return weighted_sum / total if total else None


def dated_health(health: list[Row], today: date) -> list[Row]:
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
            into[column] = int(num(into.get(column))) + int(num(row.get(column)))
        if num(row.get("top_error_events")) > num(into.get("top_error_events")):
            for column in ("top_error_code", "top_error_message", "top_error_events"):
                into[column] = row.get(column)
        settled = into["delivered"] + into["rejected"] + into["failed"]
        into["success_rate"] = into["delivered"] / settled if settled else None
    return sorted(
        merged.values(), key=lambda r: (r["delivery_date"], r.get("run_started_at") or datetime.min)
    )


def delivery_bars(health: list[Row]) -> tuple[list[Row], str]:
    """Bars of the deliveries chart, and what one bar stands for (`day` or `run`): one per
    delivery day (days without a run filled with zeros), or one per run when every run happened
    on one day."""
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
                bar[status] += int(num(r.get(status)))
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
                by_day[r["delivery_date"]][status] += int(num(r.get(status)))
        bars = list(by_day.values())
    return bars, "day"


def latest_latency(latency: list[Row], today: date) -> list[Row]:
    """Per event: its latest delivery day's row, plus `worst_p90_hours_7d` (the worst daily p90
    of the last HEALTH_DAYS days)."""
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


def match_shares(diagnostics: list[Row]) -> list[Row]:
    """Per event and source: its events, and every share weighted by the events of each day;
    most events first."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in diagnostics:
        groups.setdefault((r["event"], r["event_source"]), []).append(r)
    out = []
    for (event, source), rows in sorted(groups.items()):
        row: Row = {
            "event": event,
            "event_source": source,
            "events": sum(int(num(r["events"])) for r in rows),
        }
        for column in [c for c, _ in MATCH_KEYS] + ["avg_keys_per_event", "match_coverage",
                                                     "avg_match_quality", "share_strong_match",
                                                     "share_limited_data_use"]:
            row[column] = weighted(rows, column, "events") if column in rows[0] else None
        out.append(row)
    out.sort(key=lambda r: -r["events"])
    return out


def value_week(distribution: list[Row]) -> date | None:
    """The latest complete conversion week (the current, partial one only when it is the only
    week); None without any."""
    weeks = sorted(
        {r["conversion_week"] for r in distribution if r.get("conversion_week") is not None}
    )
    if not weeks:
        return None
    return weeks[-2] if len(weeks) > 1 else weeks[-1]


def calibration_rollup(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """pLTV calibration over every mature cohort: the rows per model version and decile, and
    the rows per model version, each with totals, means and the realised / predicted ratio."""
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
            agg["customers"] += int(num(r["customers"]))
            agg["predicted_total"] += num(r["predicted_total"])
            agg["realised_total"] += num(r["realised_total"])
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


def latest_weeks(rows: list[Row], weeks: int) -> list[Row]:
    """The rows of the `weeks` latest `week_start`s, in their order."""
    keep = set(sorted({r["week_start"] for r in rows})[-weeks:])
    return [r for r in rows if r["week_start"] in keep]
