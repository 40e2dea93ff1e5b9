"""Read the audit models dbt builds over the receipts and the outbox (models/marts/audit) into
one `AuditData`, for `sender status` (`text`) and `sender report` (`report`).

Everything is read from a read-only connection to the target's warehouse (DuckDB or
PostgreSQL, through `warehouse.open_warehouse`) and returned as plain rows (dicts); the
aggregations applied after reading (`rollup`) only reshape what the models hold (sums
over days, the latest day per event). Missing audit tables mean `dbt build` has not run since
the models were added, which `AuditTablesMissing` says in one line. The column and status
names the rollups rely on (`Row`, `STATUSES`, `MATCH_KEYS`, `HEALTH_DAYS`) are importable from
here too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tiktok_sender.audit import rollup
from tiktok_sender.audit.rollup import CHART_KEYS, HEALTH_DAYS, MATCH_KEYS, STATUSES, Row
from tiktok_sender.errors import WarehouseError
from tiktok_sender.profiles import WarehouseTarget
from tiktok_sender.relations import Relation
from tiktok_sender.warehouse import open_warehouse
from tiktok_sender.warehouse.base import SqlWarehouse

__all__ = [
    "AUDIT_MODELS",
    "CHART_KEYS",
    "HEALTH_DAYS",
    "MATCH_KEYS",
    "READINESS_CHECKS",
    "STATUSES",
    "TOP_REASONS",
    "AuditData",
    "AuditTablesMissing",
    "Row",
    "check_audit_tables",
    "connect",
    "load_audit",
    "read_audit",
]

AUDIT_MODELS: tuple[str, ...] = (
    "tiktok_delivery_health",
    "tiktok_delivery_latency",
    "tiktok_match_diagnostics",
    "tiktok_value_distribution",
    "tiktok_vbo_readiness",
    "tiktok_schema_drift",
    "pltv_calibration",
    "pltv_calibration_factors_suggested",
    "tiktok_experiment_readout",
    "experiment_design",
    "experiment_readout",
    "marketing_network_weekly",
)
# The weeks of marketing_network_weekly the report shows: the latest complete ones.
NETWORK_WEEKS = 12

# (column of tiktok_vbo_readiness, label) of the readiness checklist.
READINESS_CHECKS: tuple[tuple[str, str], ...] = (
    ("has_volume", "volume"),
    ("has_varying_value", "value"),
    ("has_valid_currency", "currency"),
    ("has_match_coverage", "match"),
    ("has_timely_delivery", "latency"),
)

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
    calibration_factors: list[Row]
    """pltv_calibration_factors_suggested, by its keys."""
    experiment_design: list[Row]
    """experiment_design, by experiment_id."""
    experiment_readout: list[Row]
    """experiment_readout, by experiment_id."""
    network_weeks: list[Row]
    """marketing_network_weekly of the NETWORK_WEEKS latest weeks with 7 days of spend, oldest
    first, by network."""
    rejections: list[Row]
    """Top reasons events ended a run rejected or failed: status, api_code, reason (api_message
    with item indexes removed), events, runs, last_seen_at."""
    today: date = field(default_factory=lambda: datetime.now(UTC).date())


def connect(target: WarehouseTarget) -> SqlWarehouse:
    """The target's warehouse, opened read-only (no delivery lease)."""
    return open_warehouse(target, read_only=True)


def check_audit_tables(con: SqlWarehouse, schema: str) -> None:
    """Raise AuditTablesMissing naming every audit model that is not in `schema`."""
    missing = [m for m in AUDIT_MODELS if m not in con.table_names(schema)]
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


def _exists(con: SqlWarehouse, relation: Relation) -> bool:
    return con.column_types(relation) is not None


def _totals(con: SqlWarehouse) -> Row:
    """Event counts by best receipt, from the outbox, receipts and runs where the sender has them
    (`con.relations`: dbt's manifest, the delivery schema var, or the target's schema)."""
    relations = con.relations
    outbox, receipts = relations.outbox.sql, relations.receipts.sql
    has_outbox, has_receipts = _exists(con, relations.outbox), _exists(con, relations.receipts)
    totals: Row = dict.fromkeys(("outbox", "never_sent", "runs", *STATUSES), 0)
    if has_outbox:
        _, rows = con.query(f"select count(*) from {outbox}")
        totals["outbox"] = totals["never_sent"] = int(rows[0][0])
    if has_receipts and has_outbox:
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
    if _exists(con, relations.runs):
        _, rows = con.query(
            f"select count(*) from {relations.runs.sql} where not coalesce(dry_run, false)"
        )
        totals["runs"] = int(rows[0][0])
    return totals


def _rejections(con: SqlWarehouse) -> list[Row]:
    """Why events ended a run rejected or failed: per event and run, the receipt that decided it
    (its rejection, else its last failed attempt). Attempts that failed before the event was
    delivered in the same run are left out."""
    if not _exists(con, con.relations.receipts):
        return []
    receipts = con.relations.receipts.sql
    # item indexes out of the message: `data.3.` -> `data.N.` (brackets, not backslashes: a
    # backslash in a string literal is an escape on Snowflake)
    reason = con.dialect.replace_all("coalesce(api_message, '(no message)')", "'data[.][0-9]+[.]'",
                                     "'data.N.'")
    # Distinct events and runs per reason counted by dense_rank (ties, nulls included, rank
    # alike): `count(distinct (a, b, c))` of a row is not SQL every engine takes.
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
        ),
        ranked as (
            select status, api_code, reason, sent_at,
                   dense_rank() over (partition by status, api_code, reason
                                      order by event_source_id, event, event_id) as event_rank,
                   dense_rank() over (partition by status, api_code, reason order by run_id) as run_rank
            from (
                select *, {reason} as reason from deciding where pick = 1
            ) decided
        )
        select status, api_code, reason,
               max(event_rank) as events,
               max(run_rank) as runs,
               max(sent_at) as last_seen_at
        from ranked
        group by status, api_code, reason
        order by events desc, runs desc, reason
        limit {TOP_REASONS}
        """,
    )


def load_audit(con: SqlWarehouse, schema: str, *, today: date | None = None) -> AuditData:
    """Read every audit model of `schema`; raises AuditTablesMissing when one is not built."""
    today = today or datetime.now(UTC).date()
    q = con.dialect.identifier(schema)  # names as the engine stores dbt's (Snowflake: upper case)

    def table(name: str, order: str) -> list[Row]:
        return _rows(con, f"select * from {q}.{con.dialect.identifier(name)} order by {order}")

    try:
        check_audit_tables(con, schema)
        health = table("tiktok_delivery_health", "run_started_at, delivery_date, run_id")
        latency = table("tiktok_delivery_latency", "delivery_date, event")
        diagnostics = table("tiktok_match_diagnostics", "conversion_date, event, event_source")
        distribution = table("tiktok_value_distribution", "event, experiment_cell, conversion_week")
        readiness = table("tiktok_vbo_readiness", "event, event_source")
        drift = table("tiktok_schema_drift", "event, event_source")
        calibration = table("pltv_calibration", "model_version, cohort_month, predicted_decile")
        readout = table("tiktok_experiment_readout", "experiment_cell desc")
        factors = table("pltv_calibration_factors_suggested", "model_version, business_model, country_code")
        design = table("experiment_design", "experiment_id")
        geo_readout = table("experiment_readout", "experiment_id")
        network_weeks = table("marketing_network_weekly", "week_start, network")
        totals = _totals(con)
        rejections = _rejections(con)
    except con.driver_errors as exc:
        raise WarehouseError(f"reading the audit tables failed: {con.error_text(exc)}") from None

    health = rollup.dated_health(health, today)
    deliveries, period = rollup.delivery_bars(health)
    week = rollup.value_week(distribution)
    deciles, versions = rollup.calibration_rollup(calibration)
    return AuditData(
        schema=schema,
        totals=totals,
        health=health,
        deliveries=deliveries,
        delivery_period=period,
        latency=latency,
        latency_latest=rollup.latest_latency(latency, today),
        match=rollup.match_shares(diagnostics),
        values=[r for r in distribution if r["conversion_week"] == week],
        value_week=week,
        readiness=readiness,
        drift=drift,
        calibration=deciles,
        calibration_versions=versions,
        readout=readout,
        calibration_factors=factors,
        experiment_design=design,
        experiment_readout=geo_readout,
        network_weeks=rollup.latest_weeks([r for r in network_weeks if r["days_with_spend"] == 7], NETWORK_WEEKS),
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
