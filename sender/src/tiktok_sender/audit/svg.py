"""The SVG building blocks of `sender report`'s charts: the colour palette, `Plot` (a chart's
drawing area and linear scales), the `svg` wrapper with its `<title>` and `<desc>`, round axis
ticks, axes, legends, bars, the placeholder of a chart without data, and grouped bar charts.
Every text placed in the SVG goes through `html.escape`, so a finished chart is `Markup`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from html import escape

from markupsafe import Markup

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
SERIES = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#332288", "#999933")
STATUS_COLOURS = {
    "delivered": "#009E73",
    "rejected": "#D55E00",
    "failed": "#E69F00",
    "expired": "#8C8C8C",
}
WIDTH = 960


def coord(value: float) -> str:
    """A coordinate: one decimal, no trailing zero."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_ticks(high: float, count: int = 5) -> list[float]:
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


def tick_text(value: float, kind: str) -> str:
    """A tick label: a percentage for `share`, else a number, thousands as `k`."""
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
        """The y coordinate of `value` on a scale from 0 (the baseline) to `high` (the top)."""
        return self.y0 - (self.y0 - self.y1) * (value / high if high else 0.0)


def svg(chart: str, key: str, title: str, desc: str, plot: Plot, body: Iterable[str]) -> Markup:
    """A chart: `<svg class="chart" data-chart=CHART>` with its title, description and body. The
    body's parts escape every text they hold (`escape`), so the chart is marked safe here, for the
    report's template to insert as it is."""
    ident = escape(f"chart-{chart}-{key}")
    return Markup(
        f'<svg class="chart" data-chart="{escape(chart)}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" viewBox="0 0 {plot.width} {plot.height}" '
        f'width="{plot.width}" height="{plot.height}">'
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(desc)}</desc>'
        f'<text class="chart-title" x="{plot.x0}" y="22">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def y_axis(plot: Plot, ticks: Sequence[float], label: str, kind: str = "number") -> list[str]:
    """Grid lines and labels at `ticks` (the last one the top), the axis label and the baseline."""
    high = ticks[-1]
    out = []
    for t in ticks:
        y = coord(plot.y(t, high))
        out.append(f'<line class="grid" x1="{plot.x0}" x2="{plot.x1}" y1="{y}" y2="{y}"/>')
        out.append(
            f'<text class="tick" x="{plot.x0 - 8}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(tick_text(t, kind))}</text>'
        )
    mid = coord((plot.y0 + plot.y1) / 2)
    out.append(
        f'<text class="axis-label" x="16" y="{mid}" text-anchor="middle" '
        f'transform="rotate(-90 16 {mid})">{escape(label)}</text>'
    )
    out.append(f'<line class="axis" x1="{plot.x0}" x2="{plot.x1}" y1="{plot.y0}" y2="{plot.y0}"/>')
    return out


def x_axis_label(plot: Plot, label: str) -> str:
    """The label under the x axis."""
    return (
        f'<text class="axis-label" x="{coord((plot.x0 + plot.x1) / 2)}" y="{plot.height - 12}" '
        f'text-anchor="middle">{escape(label)}</text>'
    )


def x_ticks(plot: Plot, centres: Sequence[tuple[float, str]], every: int = 1) -> list[str]:
    """Labels under the x axis at (x, text) centres, every `every`th one."""
    return [
        f'<text class="tick" x="{coord(x)}" y="{plot.y0 + 18}" text-anchor="middle">{escape(text)}</text>'
        for i, (x, text) in enumerate(centres)
        if i % every == 0
    ]


def legend(
    plot: Plot, items: Sequence[tuple[str, str]], *, line_items: Sequence[str] = ()
) -> list[str]:
    """Swatches from the right edge leftwards, on the title's row plus one."""
    out, x = [], float(plot.x1)
    y = 44
    for text in reversed(line_items):
        x -= 7 * len(text) + 34
        out.append(
            f'<line class="goal" x1="{coord(x)}" x2="{coord(x + 20)}" y1="{y - 4}" y2="{y - 4}"/>'
        )
        out.append(f'<text x="{coord(x + 26)}" y="{y}">{escape(text)}</text>')
    for text, colour in reversed(items):
        x -= 7 * len(text) + 32
        out.append(
            f'<rect x="{coord(x)}" y="{y - 10}" width="12" height="12" rx="2" fill="{colour}"/>'
        )
        out.append(f'<text x="{coord(x + 18)}" y="{y}">{escape(text)}</text>')
    return out


def rect(x: float, y: float, w: float, h: float, fill: str, tip: str, extra: str = "") -> str:
    """A bar with a tooltip; at least half a unit wide so that it stays visible."""
    return (
        f'<rect x="{coord(x)}" y="{coord(y)}" width="{coord(max(w, 0.5))}" height="{coord(max(h, 0))}" '
        f'fill="{fill}"{extra}><title>{escape(tip)}</title></rect>'
    )


def empty_chart(chart: str, title: str, message: str, plot: Plot | None = None) -> Markup:
    """The chart's placeholder: its title and a message saying why there is nothing to draw."""
    plot = plot or Plot(height=140, top=40, bottom=20)
    body = [
        (
            f'<text class="empty" x="{coord(plot.width / 2)}" y="{coord((plot.y0 + plot.y1) / 2)}" '
            f'text-anchor="middle">{escape(message)}</text>'
        )
    ]
    return svg(chart, "empty", title, message, plot, body)


def grouped_bars(
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
) -> Markup:
    """Bars side by side per group: groups = [(group label, one value per series)]."""
    plot = Plot()
    values = [v for _, vs in groups for v in vs if v is not None]
    high = fixed_high or max([*values, goal[0] if goal else 0.0, 0.0])
    ticks = nice_ticks(high)
    high = ticks[-1]
    body = y_axis(plot, ticks, y_label, kind)
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
                rect(start + s * bar + 1, y, bar - 2, plot.y0 - y, colour, tip(label, name, value))
            )
    body += x_ticks(plot, centres)
    body.append(x_axis_label(plot, x_label))
    line_items: list[str] = []
    if goal is not None:
        goal_y = coord(plot.y(goal[0], high))
        body.append(
            f'<line class="goal" x1="{plot.x0}" x2="{plot.x1}" y1="{goal_y}" y2="{goal_y}"/>'
        )
        line_items = [goal[1]]
    body += legend(plot, series, line_items=line_items)
    return svg(chart, key, title, desc, plot, body)


def interval_chart(
    chart: str,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, float, float, float, str]],
    *,
    x_label: str,
    kind: str = "number",
) -> Markup:
    """Estimates with their intervals, one line per row = (label, low, estimate, high, tip), on
    a horizontal axis with zero marked: green when the interval is above zero, vermilion below,
    blue across it (the word is in `desc` and the tip, never the colour alone)."""
    plot = Plot(height=120 + 48 * len(rows), left=180, top=56, bottom=52)
    low = min(0.0, *(r[1] for r in rows))
    high = max(0.0, *(r[3] for r in rows))
    pad = (high - low) * 0.08 or 1.0
    low, high = low - pad, high + pad

    def x(value: float) -> float:
        return plot.x0 + (plot.x1 - plot.x0) * (value - low) / (high - low)

    body: list[str] = []
    step = nice_ticks(high - low, 6)[1]
    t = math.ceil(low / step) * step
    while t <= high:
        xt = coord(x(t))
        body.append(f'<line class="grid" x1="{xt}" x2="{xt}" y1="{plot.y1}" y2="{plot.y0}"/>')
        body.append(
            f'<text class="tick" x="{xt}" y="{plot.y0 + 18}" text-anchor="middle">'
            f"{escape(tick_text(t, kind))}</text>"
        )
        t += step
    zero = coord(x(0.0))
    body.append(
        f'<line class="axis" x1="{zero}" x2="{zero}" y1="{plot.y1}" y2="{plot.y0}" stroke-width="2"/>'
    )
    body.append(f'<line class="axis" x1="{plot.x0}" x2="{plot.x1}" y1="{plot.y0}" y2="{plot.y0}"/>')
    band = (plot.y0 - plot.y1) / len(rows)
    for i, (label, lo, point, hi, tip) in enumerate(rows):
        y = plot.y1 + band * (i + 0.5)
        colour = SERIES[2] if lo > 0 else SERIES[5] if hi < 0 else SERIES[0]
        body.append(
            f'<line x1="{coord(x(lo))}" x2="{coord(x(hi))}" y1="{coord(y)}" y2="{coord(y)}" stroke="{colour}" '
            f'stroke-width="4" stroke-linecap="round"><title>{escape(tip)}</title></line>'
        )
        for end in (lo, hi):
            body.append(
                f'<line x1="{coord(x(end))}" x2="{coord(x(end))}" y1="{coord(y - 9)}" y2="{coord(y + 9)}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        body.append(
            f'<circle cx="{coord(x(point))}" cy="{coord(y)}" r="7" fill="{colour}">'
            f"<title>{escape(tip)}</title></circle>"
        )
        body.append(
            f'<text x="{plot.x0 - 10}" y="{coord(y)}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(label)}</text>"
        )
    body.append(x_axis_label(plot, x_label))
    return svg(chart, "all", title, desc, plot, body)
