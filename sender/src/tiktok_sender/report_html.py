"""`sender report`: the audit figures as one self-contained HTML file.

Inline CSS and inline SVG drawn here, no script and no external reference of any kind, so the
file opens offline and can be mailed or archived as is. Every text from the warehouse goes
through `html.escape`. Every chart is an `<svg class="chart" data-chart="NAME">` with a
`<title>` and `<desc>` for screen readers, a visible title and labelled axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from tiktok_sender import __version__
from tiktok_sender.audit import (
    MATCH_KEYS,
    READINESS_CHECKS,
    STATUSES,
    AuditData,
    Row,
    fmt_amount,
    fmt_count,
    fmt_hours,
    fmt_ratio,
    fmt_share,
    read_audit,
    readout_verdict,
    without_indexes,
)
from tiktok_sender.errors import ConfigError
from tiktok_sender.profiles import WarehouseTarget

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
SERIES = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#332288", "#999933")
STATUS_COLOURS = {
    "delivered": "#009E73",
    "rejected": "#D55E00",
    "failed": "#E69F00",
    "expired": "#8C8C8C",
}
WIDTH = 960

CSS = """
:root { --ink: #1d2430; --muted: #5b6575; --line: #d9dee6; --bg: #f6f7f9; --ok: #0a7a45; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main { max-width: 1040px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; padding-bottom: 8px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 4px; }
p.meta, p.note { color: var(--muted); margin: 2px 0; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px;
          margin: 16px 0; }
.totals { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 10px;
          margin: 14px 0 4px; padding: 0; }
.totals div { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.totals dt { color: var(--muted); font-size: 12px; }
.totals dd { margin: 0; font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 8px 0; }
svg.chart text { font-family: inherit; fill: var(--ink); font-size: 12px; }
svg.chart .chart-title { font-size: 14px; font-weight: 600; }
svg.chart .axis-label { fill: var(--muted); font-size: 12px; }
svg.chart .tick { fill: var(--muted); font-size: 11px; }
svg.chart .grid { stroke: #e8ebf0; stroke-width: 1; }
svg.chart .axis { stroke: #8a93a3; stroke-width: 1; }
svg.chart .goal { stroke: var(--bad); stroke-width: 1.5; stroke-dasharray: 6 4; }
svg.chart .goal-label { fill: var(--bad); font-size: 11px; }
svg.chart .empty { fill: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
td.num, td:first-child { white-space: nowrap; }
.pass { color: var(--ok); font-weight: 600; white-space: nowrap; }
.fail { color: var(--bad); font-weight: 600; white-space: nowrap; }
.badge { display: inline-block; white-space: nowrap; padding: 1px 8px; border-radius: 10px;
         font-size: 12px; font-weight: 600; }
.badge.pass { background: #e3f4ea; }
.badge.fail { background: #fbe6e4; }
footer { max-width: 1040px; margin: 0 auto; padding: 8px 24px 32px; color: var(--muted); font-size: 12px; }
"""


# -- SVG building blocks ------------------------------------------------------------------------


def _f(value: float) -> str:
    """A coordinate: one decimal, no trailing zero."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _ticks(high: float, count: int = 5) -> list[float]:
    """0 and round steps up to at least `high`."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < high - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _tick_text(value: float, kind: str) -> str:
    if kind == "share":
        return f"{value * 100:.0f}%"
    if abs(value) >= 1000:
        return f"{value / 1000:,.1f}k".replace(".0k", "k")
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


class Plot:
    """The drawing area of a chart and its linear scales."""

    def __init__(
        self,
        *,
        width: int = WIDTH,
        height: int = 340,
        left: int = 72,
        right: int = 20,
        top: int = 64,
        bottom: int = 64,
    ) -> None:
        self.width, self.height = width, height
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = height - bottom, top  # y0: the baseline (bottom), y1: the top

    def y(self, value: float, high: float) -> float:
        return self.y0 - (self.y0 - self.y1) * (value / high if high else 0.0)


def svg(chart: str, key: str, title: str, desc: str, plot: Plot, body: Iterable[str]) -> str:
    ident = escape(f"chart-{chart}-{key}")
    return (
        f'<svg class="chart" data-chart="{escape(chart)}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" viewBox="0 0 {plot.width} {plot.height}" '
        f'width="{plot.width}" height="{plot.height}">'
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(desc)}</desc>'
        f'<text class="chart-title" x="{plot.x0}" y="22">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _y_axis(plot: Plot, ticks: Sequence[float], label: str, kind: str = "number") -> list[str]:
    high = ticks[-1]
    out = []
    for t in ticks:
        y = _f(plot.y(t, high))
        out.append(f'<line class="grid" x1="{plot.x0}" x2="{plot.x1}" y1="{y}" y2="{y}"/>')
        out.append(
            f'<text class="tick" x="{plot.x0 - 8}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(_tick_text(t, kind))}</text>'
        )
    mid = _f((plot.y0 + plot.y1) / 2)
    out.append(
        f'<text class="axis-label" x="16" y="{mid}" text-anchor="middle" '
        f'transform="rotate(-90 16 {mid})">{escape(label)}</text>'
    )
    out.append(f'<line class="axis" x1="{plot.x0}" x2="{plot.x1}" y1="{plot.y0}" y2="{plot.y0}"/>')
    return out


def _x_label(plot: Plot, label: str) -> str:
    return (
        f'<text class="axis-label" x="{_f((plot.x0 + plot.x1) / 2)}" y="{plot.height - 12}" '
        f'text-anchor="middle">{escape(label)}</text>'
    )


def _x_ticks(plot: Plot, centres: Sequence[tuple[float, str]], every: int = 1) -> list[str]:
    return [
        f'<text class="tick" x="{_f(x)}" y="{plot.y0 + 18}" text-anchor="middle">{escape(text)}</text>'
        for i, (x, text) in enumerate(centres)
        if i % every == 0
    ]


def _legend(
    plot: Plot, items: Sequence[tuple[str, str]], *, line_items: Sequence[str] = ()
) -> list[str]:
    """Swatches from the right edge leftwards, on the title's row plus one."""
    out, x = [], float(plot.x1)
    y = 44
    for text in reversed(line_items):
        x -= 7 * len(text) + 34
        out.append(f'<line class="goal" x1="{_f(x)}" x2="{_f(x + 20)}" y1="{y - 4}" y2="{y - 4}"/>')
        out.append(f'<text x="{_f(x + 26)}" y="{y}">{escape(text)}</text>')
    for text, colour in reversed(items):
        x -= 7 * len(text) + 32
        out.append(
            f'<rect x="{_f(x)}" y="{y - 10}" width="12" height="12" rx="2" fill="{colour}"/>'
        )
        out.append(f'<text x="{_f(x + 18)}" y="{y}">{escape(text)}</text>')
    return out


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str, extra: str = "") -> str:
    return (
        f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0.5))}" height="{_f(max(h, 0))}" '
        f'fill="{fill}"{extra}><title>{escape(tip)}</title></rect>'
    )


def _empty(chart: str, title: str, message: str, plot: Plot | None = None) -> str:
    plot = plot or Plot(height=140, top=40, bottom=20)
    body = [
        (
            f'<text class="empty" x="{_f(plot.width / 2)}" y="{_f((plot.y0 + plot.y1) / 2)}" '
            f'text-anchor="middle">{escape(message)}</text>'
        )
    ]
    return svg(chart, "empty", title, message, plot, body)


def _grouped_bars(
    chart: str,
    key: str,
    title: str,
    desc: str,
    groups: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[tuple[str, str]],
    *,
    y_label: str,
    x_label: str,
    kind: str,
    tip: Callable[[str, str, float], str],
    goal: tuple[float, str] | None = None,
    fixed_high: float | None = None,
) -> str:
    """Bars side by side per group: groups = [(group label, one value per series)]."""
    plot = Plot()
    values = [v for _, vs in groups for v in vs if v is not None]
    high = fixed_high or max([*values, goal[0] if goal else 0.0, 0.0])
    ticks = _ticks(high)
    high = ticks[-1]
    body = _y_axis(plot, ticks, y_label, kind)
    band = (plot.x1 - plot.x0) / max(len(groups), 1)
    bar = min(28.0, band * 0.8 / max(len(series), 1))
    centres = []
    for g, (label, vs) in enumerate(groups):
        centre = plot.x0 + band * (g + 0.5)
        start = centre - bar * len(series) / 2
        centres.append((centre, label))
        for s, ((name, colour), value) in enumerate(zip(series, vs, strict=True)):
            if value is None:
                continue
            y = plot.y(value, high)
            body.append(
                _rect(start + s * bar + 1, y, bar - 2, plot.y0 - y, colour, tip(label, name, value))
            )
    body += _x_ticks(plot, centres)
    body.append(_x_label(plot, x_label))
    line_items: list[str] = []
    if goal is not None:
        goal_y = _f(plot.y(goal[0], high))
        body.append(
            f'<line class="goal" x1="{plot.x0}" x2="{plot.x1}" y1="{goal_y}" y2="{goal_y}"/>'
        )
        line_items = [goal[1]]
    body += _legend(plot, series, line_items=line_items)
    return svg(chart, key, title, desc, plot, body)


# -- charts -------------------------------------------------------------------------------------


def deliveries_chart(audit: AuditData) -> str:
    chart, title = (
        "deliveries",
        "Events per "
        + ("delivery day" if audit.delivery_period == "day" else "run")
        + " by outcome",
    )
    bars = audit.deliveries
    if not bars:
        return _empty(chart, title, "No production run yet: run `sender push`, then `dbt build`.")
    plot = Plot()
    high = max(sum(b[s] for s in STATUSES) for b in bars)
    ticks = _ticks(float(high))
    body = _y_axis(plot, ticks, "events", "number")
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
                _rect(
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
    body += _x_ticks(plot, centres, every)
    body.append(
        _x_label(
            plot,
            "delivery day (UTC)"
            if audit.delivery_period == "day"
            else "run start (UTC), " + bars[0]["period_start"].strftime("%Y-%m-%d"),
        )
    )
    body += _legend(plot, [(s, STATUS_COLOURS[s]) for s in STATUSES])
    desc = "; ".join(
        f"{b['label']}: " + ", ".join(f"{b[s]} {s}" for s in STATUSES) for b in bars[-14:]
    )
    return svg(chart, "all", title, f"Stacked bars of events by outcome. {desc}", plot, body)


def latency_chart(audit: AuditData) -> str:
    chart, title = "latency", "Hours from conversion to delivery, latest delivery day per event"
    rows = audit.latency_latest
    if not rows:
        return _empty(chart, title, "Nothing delivered yet.")
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
    return _grouped_bars(
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


def match_chart(audit: AuditData) -> str:
    chart, title = "match", "Share of events carrying each match key"
    if not audit.match:
        return _empty(chart, title, "The outbox is empty.")
    series = [(label, SERIES[i]) for i, (_, label) in enumerate(MATCH_KEYS)]
    series.append(("coverage", "#1d2430"))
    groups = [
        (r["event"], [*(r[c] for c, _ in MATCH_KEYS), r["match_coverage"]]) for r in audit.match
    ]
    desc = "; ".join(
        f"{r['event']}: "
        + ", ".join(f"{label} {fmt_share(r[c])}" for c, label in MATCH_KEYS)
        + f", coverage {fmt_share(r['match_coverage'])}"
        for r in audit.match
    )
    return _grouped_bars(
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


def values_chart(audit: AuditData) -> str:
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
        return _empty(chart, title, "No event carries a value yet.")
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
        ticks = _ticks(high, 4)
        for t in ticks:
            y = _f(plot.y(t, ticks[-1]))
            body.append(f'<line class="grid" x1="{_f(left)}" x2="{_f(right)}" y1="{y}" y2="{y}"/>')
            body.append(
                f'<text class="tick" x="{_f(left - 6)}" y="{y}" text-anchor="end" '
                f'dominant-baseline="middle">{escape(_tick_text(t, "number"))}</text>'
            )
        body.append(
            f'<line class="axis" x1="{_f(left)}" x2="{_f(right)}" y1="{plot.y0}" y2="{plot.y0}"/>'
        )
        band = (right - left) / max(len(cells), 1)
        for c, cell in enumerate(cells):
            row = next((r for r in rows if r["experiment_cell"] == cell), None)
            centre = left + band * (c + 0.5)
            body.append(
                f'<text class="tick" x="{_f(centre)}" y="{plot.y0 + 16}" text-anchor="middle">'
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
            body.append(_rect(centre - half, top, 2 * half, bottom - top, colours[cell], tip, box))
            y50 = _f(plot.y(p50, ticks[-1]))
            body.append(
                f'<line x1="{_f(centre - half)}" x2="{_f(centre + half)}" y1="{y50}" y2="{y50}" '
                f'stroke="{colours[cell]}" stroke-width="3"/>'
            )
            if row.get("mean_value") is not None:
                body.append(
                    f'<circle cx="{_f(centre)}" cy="{_f(plot.y(float(row["mean_value"]), ticks[-1]))}" '
                    f'r="4" fill="#1d2430"><title>{escape(tip)}</title></circle>'
                )
        body.append(
            f'<text x="{_f((left + right) / 2)}" y="{plot.y0 + 36}" text-anchor="middle" '
            f'font-weight="600">{escape(event)}</text>'
        )
    body.append(
        f'<text class="axis-label" x="{plot.x0}" y="48">value (reporting currency); '
        "each event has its own scale</text>"
    )
    body.append(_x_label(plot, "event and experiment cell"))
    body += _legend(plot, [(c, colours[c]) for c in cells])
    desc = "; ".join(
        f"{r['event']} {r['experiment_cell']}: p10 {fmt_amount(r['p10_value'])}, median "
        f"{fmt_amount(r['p50_value'])}, p90 {fmt_amount(r['p90_value'])}"
        for rows in panels.values()
        for r in rows
    )
    return svg(chart, "all", title, desc, plot, body)


def calibration_charts(audit: AuditData) -> list[str]:
    chart = "calibration"
    versions = sorted({r["model_version"] for r in audit.calibration})
    if not versions:
        return [_empty(chart, "Predicted versus realised value by decile", "No mature cohort yet.")]
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
            _grouped_bars(
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


def readout_chart(audit: AuditData) -> str:
    chart, title = (
        "readout",
        "Revenue per customer versus the holdout, with 95% confidence interval",
    )
    rows = [r for r in audit.readout if r.get("difference_ci95_low") is not None]
    if not rows:
        return _empty(chart, title, "No matured treatment and holdout customers yet.")
    plot = Plot(height=120 + 48 * len(rows), left=140, top=56, bottom=52)
    low = min(0.0, *(float(r["difference_ci95_low"]) for r in rows))
    high = max(0.0, *(float(r["difference_ci95_high"]) for r in rows))
    pad = (high - low) * 0.08 or 1.0
    low, high = low - pad, high + pad

    def x(value: float) -> float:
        return plot.x0 + (plot.x1 - plot.x0) * (value - low) / (high - low)

    body: list[str] = []
    span = high - low
    step = _ticks(span, 6)[1]
    t = math.ceil(low / step) * step
    while t <= high:
        xt = _f(x(t))
        body.append(f'<line class="grid" x1="{xt}" x2="{xt}" y1="{plot.y1}" y2="{plot.y0}"/>')
        body.append(
            f'<text class="tick" x="{xt}" y="{plot.y0 + 18}" text-anchor="middle">'
            f"{escape(_tick_text(t, 'number'))}</text>"
        )
        t += step
    zero = _f(x(0.0))
    body.append(
        f'<line class="axis" x1="{zero}" x2="{zero}" y1="{plot.y1}" y2="{plot.y0}" stroke-width="2"/>'
    )
    body.append(f'<line class="axis" x1="{plot.x0}" x2="{plot.x1}" y1="{plot.y0}" y2="{plot.y0}"/>')
    band = (plot.y0 - plot.y1) / len(rows)
    for i, r in enumerate(rows):
        y = plot.y1 + band * (i + 0.5)
        lo, hi, diff = (
            float(r[k])
            for k in ("difference_ci95_low", "difference_ci95_high", "difference_vs_holdout")
        )
        tip = (
            f"{r['experiment_cell']} - holdout: {diff:+,.2f} per customer "
            f"(95% CI {lo:+,.2f} to {hi:+,.2f})"
        )
        colour = SERIES[2] if lo > 0 else SERIES[5] if hi < 0 else SERIES[0]
        body.append(
            f'<line x1="{_f(x(lo))}" x2="{_f(x(hi))}" y1="{_f(y)}" y2="{_f(y)}" stroke="{colour}" '
            f'stroke-width="4" stroke-linecap="round"><title>{escape(tip)}</title></line>'
        )
        for end in (lo, hi):
            body.append(
                f'<line x1="{_f(x(end))}" x2="{_f(x(end))}" y1="{_f(y - 9)}" y2="{_f(y + 9)}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        body.append(
            f'<circle cx="{_f(x(diff))}" cy="{_f(y)}" r="7" fill="{colour}">'
            f"<title>{escape(tip)}</title></circle>"
        )
        body.append(
            f'<text x="{plot.x0 - 10}" y="{_f(y)}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(str(r['experiment_cell']))}</text>"
        )
    body.append(
        _x_label(
            plot, "difference in revenue per customer against the holdout (reporting currency)"
        )
    )
    desc = "; ".join(readout_verdict(r) for r in rows)
    return svg(chart, "all", title, desc, plot, body)


def rejections_chart(audit: AuditData) -> str:
    chart, title = "rejections", "Top reasons of rejected and failed events"
    rows = audit.rejections
    if not rows:
        return _empty(chart, title, "No rejected or failed receipt.")
    plot = Plot(height=96 + 30 * len(rows), left=360, top=56, bottom=48)
    high = _ticks(float(max(r["events"] for r in rows)))
    body: list[str] = []
    for t in high:
        xt = _f(plot.x0 + (plot.x1 - plot.x0) * t / high[-1])
        body.append(f'<line class="grid" x1="{xt}" x2="{xt}" y1="{plot.y1}" y2="{plot.y0}"/>')
        body.append(
            f'<text class="tick" x="{xt}" y="{plot.y0 + 18}" text-anchor="middle">'
            f"{escape(_tick_text(t, 'number'))}</text>"
        )
    band = (plot.y0 - plot.y1) / len(rows)
    for i, r in enumerate(rows):
        y = plot.y1 + band * i
        label = " ".join(str(x) for x in (r["api_code"], r["reason"]) if x is not None)
        short = label if len(label) <= 52 else label[:49] + "..."
        w = (plot.x1 - plot.x0) * r["events"] / high[-1]
        tip = f"{r['status']}, {label}: {r['events']:,} events in {r['runs']:,} run(s)"
        body.append(
            _rect(plot.x0, y + band * 0.15, w, band * 0.7, STATUS_COLOURS[r["status"]], tip)
        )
        body.append(
            f'<text x="{plot.x0 - 10}" y="{_f(y + band / 2)}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(short)}</text>'
        )
    body.append(f'<line class="axis" x1="{plot.x0}" x2="{plot.x0}" y1="{plot.y1}" y2="{plot.y0}"/>')
    body.append(_x_label(plot, "events that ended a run rejected or failed"))
    body += _legend(plot, [(s, STATUS_COLOURS[s]) for s in ("rejected", "failed")])
    desc = "; ".join(
        f"{r['status']} {r['api_code']} {r['reason']}: {r['events']} events" for r in rows
    )
    return svg(chart, "all", title, desc, plot, body)


# -- tables -------------------------------------------------------------------------------------


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    name: str = "",
    empty: str = "No rows.",
) -> str:
    """An HTML table; cells are pre-escaped HTML, columns in `numeric` right-aligned."""
    if not rows:
        return f'<p class="note">{escape(empty)}</p>' if empty else ""
    head = "".join(
        f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    attr = f' data-table="{escape(name)}"' if name else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _mark(ok: Any, passed: str = "pass", failed: str = "fail") -> str:
    """A check mark or a cross, with the word beside it (colour is never the only signal)."""
    if ok is None:
        return "-"
    if ok:
        return f'<span class="pass">&#10003; {escape(passed)}</span>'
    return f'<span class="fail">&#10007; {escape(failed)}</span>'


def readiness_table(audit: AuditData) -> str:
    rows = []
    for r in audit.readiness:
        ready = (
            '<span class="badge pass">ready</span>'
            if r["is_ready"]
            else '<span class="badge fail">not ready</span>'
        )
        reasons = [s.strip() for s in (r.get("not_ready_reasons") or "").split(";") if s.strip()]
        rows.append(
            [
                escape(str(r["event"])),
                escape(str(r["event_source"])),
                ready,
                fmt_count(r["weekly_events"]),
                *(_mark(r[c]) for c, _ in READINESS_CHECKS),
                "<br>".join(escape(s) for s in reasons) or "-",
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


def _e(value: Any) -> str:
    return escape("-" if value is None else str(value))


def _section(ident: str, title: str, intro: str, *parts: str) -> str:
    return (
        f'<section id="{escape(ident)}"><h2>{escape(title)}</h2>'
        f'<p class="note">{intro}</p>{"".join(parts)}</section>'
    )


def render_report(audit: AuditData, *, warehouse: str, generated_at: datetime | None = None) -> str:
    """The whole report as one HTML document, with no reference to anything outside it."""
    generated_at = generated_at or datetime.now(UTC)
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
    totals = (
        '<dl class="totals">'
        + "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in cards)
        + "</dl>"
    )

    runs = [
        [
            _e(r["delivery_date"]),
            f"<code>{_e(str(r['run_id'])[:12])}</code>",
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
    valueless = sorted(
        {r["event"] for r in audit.values}
        - {r["event"] for r in audit.values if r.get("events_with_value")}
    )
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
    verdicts = "".join(
        f'<p class="note">{escape(readout_verdict(r))}</p>'
        for r in audit.readout
        if r.get("difference_ci95_low") is not None
    )
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
    window = audit.readout[0]["readout_window_days"] if audit.readout else None

    sections = [
        _section(
            "deliveries",
            "Delivery health",
            "Every production run's events by outcome (<code>tiktok_delivery_health</code>). An event "
            "that failed in one run and was delivered in the next counts in both.",
            deliveries_chart(audit),
            table(
                ["day", "run", "outcome", "events", *STATUSES, "success", "top error"],
                runs,
                numeric=range(3, 9),
                name="runs",
            ),
        ),
        _section(
            "latency",
            "Delivery latency",
            "Hours from the conversion to its acknowledged delivery (<code>tiktok_delivery_latency</code>). "
            "Late signal loses optimisation value.",
            latency_chart(audit),
            table(
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
            ),
        ),
        _section(
            "match",
            "Match-key coverage",
            "Share of outboxed events carrying each key, over every conversion day "
            "(<code>tiktok_match_diagnostics</code>); coverage = email, phone or ttclid.",
            match_chart(audit),
        ),
        _section(
            "values",
            "Value distribution by cell",
            "Values sent per event and experiment cell for the latest complete conversion week "
            "(<code>tiktok_value_distribution</code>).",
            values_chart(audit),
            f'<p class="note">Sent without a value: {escape(", ".join(valueless))}.</p>'
            if valueless
            else "",
            table(
                ["event", "cell", "events", "mean", "cv", "zero", "capped", "vs previous week"],
                value_rows,
                numeric=range(2, 8),
                name="values",
            ),
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
            table(
                ["status", "code", "reason", "events", "runs", "last seen (UTC)"],
                rejection_rows,
                numeric=(3, 4),
                name="rejections",
                empty="",
            ),
        ),
        _section(
            "drift",
            "Schema drift",
            "Events in the outbox against the event mapping (<code>tiktok_schema_drift</code>).",
            table(
                ["event", "source", "mapped", "anchor", "events 7d", "days since seen", "status"],
                drift_rows,
                numeric=(4, 5),
                name="drift",
            ),
        ),
        _section(
            "calibration",
            "pLTV calibration",
            "Predicted versus realised value of mature cohorts (<code>pltv_calibration</code>); "
            "ratio = realised / predicted, below 1 the model over-predicts.",
            *calibration_charts(audit),
            table(
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
            ),
        ),
        _section(
            "readout",
            "Experiment readout",
            "Revenue per customer "
            + (f"{window} days after entering the experiment " if window is not None else "")
            + "(<code>tiktok_experiment_readout</code>); Welch interval, customers assumed independent.",
            readout_chart(audit),
            verdicts,
            table(
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
            ),
        ),
    ]
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>TikTok delivery audit</title><style>",
            CSS,
            "</style></head><body>",
            "<header><h1>TikTok delivery audit</h1>",
            (
                f'<p class="meta">Generated {escape(generated_at.strftime("%Y-%m-%d %H:%M UTC"))} from '
                f"{escape(warehouse)}, schema <code>{escape(audit.schema)}</code>.</p>"
            ),
            totals,
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
