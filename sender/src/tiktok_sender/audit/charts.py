"""The charts of `sender report`, one function per chart, each drawing its figures of
`audit.AuditData` as an inline `<svg class="chart" data-chart="NAME">` (or a placeholder
saying why there is nothing to draw) from the blocks of `svg`: delivery outcomes,
latency, match keys, values per cell, pLTV calibration, the experiment readout, the geo
experiments' lift, TikTok's reported ROAS against the blended MER and the top rejection reasons.
"""

from __future__ import annotations

import math
from html import escape

from markupsafe import Markup

from tiktok_sender.audit.read import CHART_KEYS, STATUSES, AuditData, Row
from tiktok_sender.audit.svg import (
    SERIES,
    STATUS_COLOURS,
    Plot,
    coord,
    empty_chart,
    grouped_bars,
    interval_chart,
    legend,
    nice_ticks,
    rect,
    svg,
    tick_text,
    x_axis_label,
    x_ticks,
    y_axis,
)
from tiktok_sender.audit.text import (
    fmt_amount,
    fmt_hours,
    fmt_ratio,
    fmt_share,
    geo_verdict,
    readout_verdict,
)


def deliveries_chart(audit: AuditData) -> Markup:
    chart, title = (
        "deliveries",
        "Events per "
        + ("delivery day" if audit.delivery_period == "day" else "run")
        + " by outcome",
    )
    bars = audit.deliveries
    if not bars:
        return empty_chart(
            chart, title, "No production run yet: run `sender push`, then `dbt build`."
        )
    plot = Plot()
    high = max(sum(b[s] for s in STATUSES) for b in bars)
    ticks = nice_ticks(float(high))
    body = y_axis(plot, ticks, "events", "number")
    band = (plot.x1 - plot.x0) / len(bars)
    width = min(48.0, band * 0.7)
    centres = []
    for i, b in enumerate(bars):
        centre = plot.x0 + band * (i + 0.5)
        centres.append((centre, b["label"]))
        level = 0.0
        for status in STATUSES:
            if not b[status]:
                continue
            top, bottom = plot.y(level + b[status], ticks[-1]), plot.y(level, ticks[-1])
            body.append(
                rect(
                    centre - width / 2,
                    top,
                    width,
                    bottom - top,
                    STATUS_COLOURS[status],
                    f"{b['label']}: {b[status]:,} {status}",
                )
            )
            level += b[status]
    every = max(1, math.ceil(len(bars) / 14))
    body += x_ticks(plot, centres, every)
    body.append(
        x_axis_label(
            plot,
            "delivery day (UTC)"
            if audit.delivery_period == "day"
            else "run start (UTC), " + bars[0]["period_start"].strftime("%Y-%m-%d"),
        )
    )
    body += legend(plot, [(s, STATUS_COLOURS[s]) for s in STATUSES])
    desc = "; ".join(
        f"{b['label']}: " + ", ".join(f"{b[s]} {s}" for s in STATUSES) for b in bars[-14:]
    )
    return svg(chart, "all", title, f"Stacked bars of events by outcome. {desc}", plot, body)


def latency_chart(audit: AuditData) -> Markup:
    chart, title = "latency", "Hours from conversion to delivery, latest delivery day per event"
    rows = audit.latency_latest
    if not rows:
        return empty_chart(chart, title, "Nothing delivered yet.")
    goal = float(rows[0]["latency_goal_hours"])
    series = [("p50", SERIES[4]), ("p90", SERIES[0]), ("p99", SERIES[6])]
    groups = [(r["event"], [r["p50_hours"], r["p90_hours"], r["p99_hours"]]) for r in rows]
    desc = (
        "; ".join(
            f"{r['event']}: p50 {fmt_hours(r['p50_hours'])}, p90 {fmt_hours(r['p90_hours'])}, "
            f"p99 {fmt_hours(r['p99_hours'])}"
            for r in rows
        )
        + f"; goal {goal:g} h"
    )
    return grouped_bars(
        chart,
        "all",
        title,
        desc,
        groups,
        series,
        y_label="hours",
        x_label="event",
        kind="number",
        tip=lambda g, s, v: f"{g} {s}: {v:,.1f} h",
        goal=(goal, f"goal {goal:g} h"),
    )


def match_chart(audit: AuditData) -> Markup:
    chart, title = "match", "Share of events carrying each match key"
    if not audit.match:
        return empty_chart(chart, title, "The outbox is empty.")
    series = [(label, SERIES[i]) for i, (_, label) in enumerate(CHART_KEYS)]
    series.append(("coverage", "#1d2430"))
    groups = [
        (r["event"], [*(r[c] for c, _ in CHART_KEYS), r["match_coverage"]]) for r in audit.match
    ]
    desc = "; ".join(
        f"{r['event']}: "
        + ", ".join(f"{label} {fmt_share(r[c])}" for c, label in CHART_KEYS)
        + f", coverage {fmt_share(r['match_coverage'])}"
        for r in audit.match
    )
    return grouped_bars(
        chart,
        "all",
        title,
        desc,
        groups,
        series,
        y_label="share of events",
        x_label="event",
        kind="share",
        tip=lambda g, s, v: f"{g}, {s}: {v * 100:.1f}%",
        fixed_high=1.0,
    )


def values_chart(audit: AuditData) -> Markup:
    chart = "values"
    week = audit.value_week
    title = "Values sent per event and cell, p10-p90 box, median line, mean dot" + (
        f", week of {week:%Y-%m-%d}" if week else ""
    )
    panels: dict[str, list[Row]] = {}
    for r in audit.values:
        if r.get("p50_value") is not None:
            panels.setdefault(r["event"], []).append(r)
    if not panels:
        return empty_chart(chart, title, "No event carries a value yet.")
    plot = Plot(height=360, left=24, top=64, bottom=64)
    cells = sorted({r["experiment_cell"] for rows in panels.values() for r in rows}, reverse=True)
    colours = {c: SERIES[i % len(SERIES)] for i, c in enumerate(cells)}
    gap = 32.0
    panel_w = (plot.x1 - plot.x0 - gap * (len(panels) - 1)) / len(panels)
    body: list[str] = []
    for p, (event, rows) in enumerate(sorted(panels.items())):
        left = plot.x0 + p * (panel_w + gap) + 48  # room for the panel's tick labels
        right = plot.x0 + p * (panel_w + gap) + panel_w
        high = max(float(r["p90_value"]) for r in rows)
        high = max(high, max(float(r["mean_value"] or 0) for r in rows))
        ticks = nice_ticks(high, 4)
        for t in ticks:
            y = coord(plot.y(t, ticks[-1]))
            body.append(
                f'<line class="grid" x1="{coord(left)}" x2="{coord(right)}" y1="{y}" y2="{y}"/>'
            )
            body.append(
                f'<text class="tick" x="{coord(left - 6)}" y="{y}" text-anchor="end" '
                f'dominant-baseline="middle">{escape(tick_text(t, "number"))}</text>'
            )
        body.append(
            f'<line class="axis" x1="{coord(left)}" x2="{coord(right)}" y1="{plot.y0}" y2="{plot.y0}"/>'
        )
        band = (right - left) / max(len(cells), 1)
        for c, cell in enumerate(cells):
            row = next((r for r in rows if r["experiment_cell"] == cell), None)
            centre = left + band * (c + 0.5)
            body.append(
                f'<text class="tick" x="{coord(centre)}" y="{plot.y0 + 16}" text-anchor="middle">'
                f"{escape(cell)}</text>"
            )
            if row is None:
                continue
            p10, p50, p90 = (float(row[k]) for k in ("p10_value", "p50_value", "p90_value"))
            top, bottom = plot.y(p90, ticks[-1]), plot.y(p10, ticks[-1])
            half = min(22.0, band * 0.3)
            tip = (
                f"{event}, {cell}: {row['events']:,} events, p10 {p10:,.2f}, median {p50:,.2f}, "
                f"p90 {p90:,.2f}, mean {fmt_amount(row['mean_value'])}"
            )
            box = f' fill-opacity="0.35" stroke="{colours[cell]}"'
            body.append(rect(centre - half, top, 2 * half, bottom - top, colours[cell], tip, box))
            y50 = coord(plot.y(p50, ticks[-1]))
            body.append(
                f'<line x1="{coord(centre - half)}" x2="{coord(centre + half)}" y1="{y50}" y2="{y50}" '
                f'stroke="{colours[cell]}" stroke-width="3"/>'
            )
            if row.get("mean_value") is not None:
                body.append(
                    f'<circle cx="{coord(centre)}" cy="{coord(plot.y(float(row["mean_value"]), ticks[-1]))}" '
                    f'r="4" fill="#1d2430"><title>{escape(tip)}</title></circle>'
                )
        body.append(
            f'<text x="{coord((left + right) / 2)}" y="{plot.y0 + 36}" text-anchor="middle" '
            f'font-weight="600">{escape(event)}</text>'
        )
    body.append(
        f'<text class="axis-label" x="{plot.x0}" y="48">value (reporting currency); '
        "each event has its own scale</text>"
    )
    body.append(x_axis_label(plot, "event and experiment cell"))
    body += legend(plot, [(c, colours[c]) for c in cells])
    desc = "; ".join(
        f"{r['event']} {r['experiment_cell']}: p10 {fmt_amount(r['p10_value'])}, median "
        f"{fmt_amount(r['p50_value'])}, p90 {fmt_amount(r['p90_value'])}"
        for rows in panels.values()
        for r in rows
    )
    return svg(chart, "all", title, desc, plot, body)


def calibration_charts(audit: AuditData) -> list[Markup]:
    chart = "calibration"
    versions = sorted({r["model_version"] for r in audit.calibration})
    if not versions:
        return [
            empty_chart(chart, "Predicted versus realised value by decile", "No mature cohort yet.")
        ]
    out = []
    for version in versions:
        rows = [r for r in audit.calibration if r["model_version"] == version]
        groups = [
            (str(r["predicted_decile"]), [r["predicted_mean"], r["realised_mean"]]) for r in rows
        ]
        desc = "; ".join(
            f"decile {r['predicted_decile']}: predicted {fmt_amount(r['predicted_mean'])}, realised "
            f"{fmt_amount(r['realised_mean'])}, ratio {fmt_ratio(r['calibration_ratio'])}"
            for r in rows
        )
        out.append(
            grouped_bars(
                chart,
                version,
                f"Predicted versus realised value per customer by decile, {version}",
                desc,
                groups,
                [("predicted", SERIES[0]), ("realised", SERIES[1])],
                y_label="value per customer",
                x_label="predicted decile (1 = lowest)",
                kind="number",
                tip=lambda g, s, v: f"decile {g}, {s}: {v:,.2f} per customer",
            )
        )
    return out


def readout_chart(audit: AuditData) -> Markup:
    chart, title = (
        "readout",
        "Revenue per customer versus the holdout, with 95% confidence interval",
    )
    rows = [r for r in audit.readout if r.get("difference_ci95_low") is not None]
    if not rows:
        return empty_chart(chart, title, "No matured treatment and holdout customers yet.")
    intervals = []
    for r in rows:
        lo, hi, diff = (
            float(r[k]) for k in ("difference_ci95_low", "difference_ci95_high", "difference_vs_holdout")
        )
        tip = f"{r['experiment_cell']} - holdout: {diff:+,.2f} per customer (95% CI {lo:+,.2f} to {hi:+,.2f})"
        intervals.append((str(r["experiment_cell"]), lo, diff, hi, tip))
    desc = "; ".join(readout_verdict(r) for r in rows)
    return interval_chart(
        chart, title, desc, intervals,
        x_label="difference in revenue per customer against the holdout (reporting currency)",
    )


def experiments_chart(audit: AuditData) -> Markup:
    """The lift of every readable geo experiment with its 95% interval (experiment_readout)."""
    chart, title = "experiments", "Geo experiments: revenue lift of the treatment geos, with 95% interval"
    rows = [r for r in audit.experiment_readout if r.get("lift_ci95_low") is not None]
    if not audit.experiment_readout:
        return empty_chart(chart, title,
                           "No geo experiment registered (source experiments; README, \"Geo experiments\").")
    if not rows:
        return empty_chart(chart, title, "No registered geo experiment has matured yet.")
    intervals = [
        (str(r["experiment_id"]), float(r["lift_ci95_low"]), float(r["lift"]), float(r["lift_ci95_high"]),
         geo_verdict(r))
        for r in rows
    ]
    desc = "; ".join(geo_verdict(r) for r in audit.experiment_readout)
    return interval_chart(
        chart, title, desc, intervals,
        x_label="lift of the treatment geos' revenue at maturity over their counterfactual", kind="share",
    )


def networks_chart(audit: AuditData) -> Markup:
    """Each week's TikTok platform ROAS beside the blended MER (marketing_network_weekly)."""
    chart, title = "networks", "TikTok's reported ROAS against blended revenue per unit of spend (MER), by week"
    rows = [r for r in audit.network_weeks if r["network"] == "tiktok"]
    if not rows:
        return empty_chart(chart, title, "No TikTok spend in the ad_spend source.")
    groups = [(f"{r['week_start']:%m-%d}", [r["platform_roas"], r["mer"]]) for r in rows]
    desc = "; ".join(
        f"week of {r['week_start']:%Y-%m-%d}: TikTok reports ROAS {fmt_ratio(r['platform_roas'])}, "
        f"MER {fmt_ratio(r['mer'])}"
        for r in rows
    )
    return grouped_bars(
        chart, "all", title, desc, groups,
        [("TikTok platform ROAS", SERIES[0]), ("blended MER", SERIES[1])],
        y_label="revenue per unit of spend", x_label="week starting (Monday)", kind="number",
        tip=lambda g, s, v: f"week of {g}: {s} {v:,.2f}",
    )


def rejections_chart(audit: AuditData) -> Markup:
    chart, title = "rejections", "Top reasons of rejected and failed events"
    rows = audit.rejections
    if not rows:
        return empty_chart(chart, title, "No rejected or failed receipt.")
    plot = Plot(height=96 + 30 * len(rows), left=360, top=56, bottom=48)
    high = nice_ticks(float(max(r["events"] for r in rows)))
    body: list[str] = []
    for t in high:
        xt = coord(plot.x0 + (plot.x1 - plot.x0) * t / high[-1])
        body.append(f'<line class="grid" x1="{xt}" x2="{xt}" y1="{plot.y1}" y2="{plot.y0}"/>')
        body.append(
            f'<text class="tick" x="{xt}" y="{plot.y0 + 18}" text-anchor="middle">'
            f"{escape(tick_text(t, 'number'))}</text>"
        )
    band = (plot.y0 - plot.y1) / len(rows)
    for i, r in enumerate(rows):
        y = plot.y1 + band * i
        label = " ".join(str(x) for x in (r["api_code"], r["reason"]) if x is not None)
        short = label if len(label) <= 52 else label[:49] + "..."
        w = (plot.x1 - plot.x0) * r["events"] / high[-1]
        tip = f"{r['status']}, {label}: {r['events']:,} events in {r['runs']:,} run(s)"
        body.append(rect(plot.x0, y + band * 0.15, w, band * 0.7, STATUS_COLOURS[r["status"]], tip))
        body.append(
            f'<text x="{plot.x0 - 10}" y="{coord(y + band / 2)}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(short)}</text>'
        )
    body.append(f'<line class="axis" x1="{plot.x0}" x2="{plot.x0}" y1="{plot.y1}" y2="{plot.y0}"/>')
    body.append(x_axis_label(plot, "events that ended a run rejected or failed"))
    body += legend(plot, [(s, STATUS_COLOURS[s]) for s in ("rejected", "failed")])
    desc = "; ".join(
        f"{r['status']} {r['api_code']} {r['reason']}: {r['events']} events" for r in rows
    )
    return svg(chart, "all", title, desc, plot, body)
