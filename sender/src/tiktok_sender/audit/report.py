"""`sender report`: the audit figures as one self-contained HTML file.

`render_report` lays out the document: the totals, then one section per audit model with its
charts (`charts`, inline SVG) and tables (`tables`), styled by the inline CSS of
`templates/report.css` (package data); `write_report` reads the target's audit models and
writes the file. No script and no external reference of any kind, so the file opens offline
and can be mailed or archived as is. Every text from the warehouse goes through
`html.escape`. Every chart is an `<svg class="chart" data-chart="NAME">` with a `<title>` and
`<desc>` for screen readers, a visible title and labelled axes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from html import escape
from importlib.resources import files
from pathlib import Path

from tiktok_sender import __version__
from tiktok_sender.audit.charts import (
    calibration_charts,
    deliveries_chart,
    experiments_chart,
    latency_chart,
    match_chart,
    networks_chart,
    readout_chart,
    rejections_chart,
    values_chart,
)
from tiktok_sender.audit.read import AuditData, read_audit
from tiktok_sender.audit.tables import (
    calibration_table,
    drift_table,
    experiments_table,
    factors_table,
    geo_verdicts,
    latency_table,
    match_table,
    networks_table,
    readiness_table,
    readout_table,
    readout_verdicts,
    rejections_table,
    runs_table,
    valueless_note,
    values_table,
)
from tiktok_sender.audit.text import fmt_count, fmt_share
from tiktok_sender.errors import ConfigError
from tiktok_sender.profiles import WarehouseTarget


@cache
def report_css() -> str:
    """The report's style sheet, `templates/report.css` of the package."""
    return (files("tiktok_sender.audit") / "templates" / "report.css").read_text(encoding="utf-8")


def _section(ident: str, title: str, intro: str, *parts: str) -> str:
    return (
        f'<section id="{escape(ident)}"><h2>{escape(title)}</h2>'
        f'<p class="note">{intro}</p>{"".join(parts)}</section>'
    )


def _totals(audit: AuditData) -> str:
    """The headline figures, as cards above the sections."""
    t = audit.totals
    settled = t["delivered"] + t["rejected"] + t["failed"]
    ready = sum(1 for r in audit.readiness if r["is_ready"])
    cards = [
        ("outbox events", fmt_count(t["outbox"])),
        ("delivered", fmt_count(t["delivered"])),
        ("rejected", fmt_count(t["rejected"])),
        ("failed (pending)", fmt_count(t["failed"])),
        ("expired", fmt_count(t["expired"])),
        ("never sent", fmt_count(t["never_sent"])),
        ("success rate", fmt_share(t["delivered"] / settled if settled else None)),
        ("runs", fmt_count(t["runs"])),
        ("anchors ready", f"{ready} / {len(audit.readiness)}"),
    ]
    return (
        '<dl class="totals">'
        + "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in cards)
        + "</dl>"
    )


def render_report(audit: AuditData, *, warehouse: str, generated_at: datetime | None = None) -> str:
    """The whole report as one HTML document, with no reference to anything outside it."""
    generated_at = generated_at or datetime.now(UTC)
    window = audit.readout[0]["readout_window_days"] if audit.readout else None

    sections = [
        _section(
            "experiments",
            "Geo experiments: does pLTV pay?",
            "Treatment geos optimised on pLTV values, control geos on business as usual, read by "
            "intention to treat on the revenue at maturity of the customers each cell acquired in "
            "the window (<code>experiment_design</code>, <code>experiment_readout</code>; README, "
            "\"Geo experiments\"). Incremental ROAS is the return the value signal caused on the "
            "network's spend in the treatment geos; platform ROAS is what the network reports for it.",
            experiments_chart(audit),
            geo_verdicts(audit),
            experiments_table(audit),
        ),
        _section(
            "networks",
            "Platform ROAS against blended revenue",
            "Per complete week: what each network spent and what its own reporting claims, beside "
            "the business's blended revenue per unit of total spend (MER, "
            "<code>marketing_network_weekly</code>). A platform ROAS rising while MER stays flat or "
            "falls is attribution, not incrementality.",
            networks_chart(audit),
            networks_table(audit),
        ),
        _section(
            "deliveries",
            "Delivery health",
            "Every production run's events by outcome (<code>tiktok_delivery_health</code>). An event "
            "that failed in one run and was delivered in the next counts in both.",
            deliveries_chart(audit),
            runs_table(audit),
        ),
        _section(
            "latency",
            "Delivery latency",
            "Hours from the conversion to its acknowledged delivery (<code>tiktok_delivery_latency</code>). "
            "Late signal loses optimisation value.",
            latency_chart(audit),
            latency_table(audit),
        ),
        _section(
            "match",
            "Match-key coverage",
            "Share of outboxed events carrying each key, over every conversion day "
            "(<code>tiktok_match_diagnostics</code>); coverage = email, phone or ttclid. Match "
            "quality is this project's 0-10 estimate (README, \"Match keys\"), not TikTok's "
            "score; a strong match scores 6 or more.",
            match_chart(audit),
            match_table(audit),
        ),
        _section(
            "values",
            "Value distribution by cell",
            "Values sent per event and experiment cell for the latest complete conversion week "
            "(<code>tiktok_value_distribution</code>).",
            values_chart(audit),
            valueless_note(audit),
            values_table(audit),
        ),
        _section(
            "readiness",
            "Value-based optimisation readiness",
            "Checklist per anchor event over the last 7 days (<code>tiktok_vbo_readiness</code>).",
            readiness_table(audit),
        ),
        _section(
            "rejections",
            "Top rejection reasons",
            "Why events ended a run rejected, or failed after their last attempt, grouped by code and "
            "message with item indexes removed (<code>tiktok_delivery_receipts</code>). Attempts that "
            "failed before a delivery in the same run are left out.",
            rejections_chart(audit),
            rejections_table(audit),
        ),
        _section(
            "drift",
            "Schema drift",
            "Events in the outbox against the event mapping (<code>tiktok_schema_drift</code>).",
            drift_table(audit),
        ),
        _section(
            "calibration",
            "pLTV calibration",
            "Predicted versus realised value of scores whose horizon has passed "
            "(<code>pltv_calibration</code>); ratio = realised / predicted, below 1 the model "
            "over-predicts. The factors they suggest for <code>pltv_calibration_factors</code>, "
            "against the ones in force (<code>pltv_calibration_factors_suggested</code>; README, "
            "\"Refreshing the calibration factors\").",
            *calibration_charts(audit),
            calibration_table(audit),
            factors_table(audit),
        ),
        _section(
            "readout",
            "Experiment readout",
            "Revenue per customer "
            + (f"{window} days after entering the experiment " if window is not None else "")
            + "(<code>tiktok_experiment_readout</code>); Welch interval, customers assumed independent.",
            readout_chart(audit),
            readout_verdicts(audit),
            readout_table(audit),
        ),
    ]
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>TikTok delivery audit</title><style>\n",
            report_css(),
            "</style></head><body>",
            "<header><h1>TikTok delivery audit</h1>",
            (
                f'<p class="meta">Generated {escape(generated_at.strftime("%Y-%m-%d %H:%M UTC"))} from '
                f"{escape(warehouse)}, schema <code>{escape(audit.schema)}</code>.</p>"
            ),
            _totals(audit),
            "</header><main>",
            *sections,
            "</main>",
            (
                f"<footer>tiktok-outbox sender {escape(__version__)}. Production receipts only; test events are "
                "left out. Values in the reporting currency.</footer></body></html>\n"
            ),
        ]
    )


def write_report(
    target: WarehouseTarget, out: Path, *, generated_at: datetime | None = None
) -> Path:
    """Read the target's audit models and write the report to `out`; returns the path written."""
    document = render_report(
        read_audit(target), warehouse=target.describe(), generated_at=generated_at
    )
    partial = out.with_name(out.name + ".partial")
    try:
        partial.write_text(document, encoding="utf-8")
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return out
