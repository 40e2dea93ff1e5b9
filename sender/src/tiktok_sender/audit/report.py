"""`sender report`: the audit figures as one self-contained HTML file.

`render_report` fills the Jinja2 template `templates/report.html.j2` (package data, autoescaped):
the totals, then one section per audit model with its charts (`charts`, inline SVG) and tables
(`tables`, rendered by the macros of `templates/parts.html.j2`), styled by the inline CSS of
`templates/report.css`; `write_report` reads the target's audit models and writes the file. No
script and no external reference of any kind, so the file opens offline and can be mailed or
archived as is. Every text from the warehouse is escaped by the template, or where a chart is
built (`svg`). Every chart is an `<svg class="chart" data-chart="NAME">` with a `<title>` and
`<desc>` for screen readers, a visible title and labelled axes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace

import jinja2
from markupsafe import Markup

from tiktok_sender import __version__
from tiktok_sender.audit import charts, tables
from tiktok_sender.audit.read import AuditData, read_audit
from tiktok_sender.audit.text import fmt_count, fmt_share
from tiktok_sender.errors import ConfigError
from tiktok_sender.profiles import WarehouseTarget

TEMPLATES = files("tiktok_sender.audit") / "templates"


@cache
def report_css() -> str:
    """The report's style sheet, `templates/report.css` of the package."""
    return (TEMPLATES / "report.css").read_text(encoding="utf-8")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("tiktok_sender.audit", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def _totals(audit: AuditData) -> list[tuple[str, str]]:
    """The headline figures, as cards above the sections."""
    t = audit.totals
    settled = t["delivered"] + t["rejected"] + t["failed"]
    ready = sum(1 for r in audit.readiness if r["is_ready"])
    return [
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


def render_report(audit: AuditData, *, warehouse: str, generated_at: datetime | None = None) -> str:
    """The whole report as one HTML document, with no reference to anything outside it."""
    return _environment().get_template("report.html.j2").render(
        css=Markup(report_css()),  # the package's own file
        generated_at=generated_at or datetime.now(UTC),
        warehouse=warehouse,
        schema=audit.schema,
        version=__version__,
        totals=_totals(audit),
        window=audit.readout[0]["readout_window_days"] if audit.readout else None,
        charts=SimpleNamespace(
            experiments=charts.experiments_chart(audit),
            networks=charts.networks_chart(audit),
            deliveries=charts.deliveries_chart(audit),
            latency=charts.latency_chart(audit),
            match=charts.match_chart(audit),
            values=charts.values_chart(audit),
            rejections=charts.rejections_chart(audit),
            calibration=charts.calibration_charts(audit),
            readout=charts.readout_chart(audit),
        ),
        tables=SimpleNamespace(
            experiments=tables.experiments_table(audit),
            networks=tables.networks_table(audit),
            runs=tables.runs_table(audit),
            latency=tables.latency_table(audit),
            match=tables.match_table(audit),
            values=tables.values_table(audit),
            readiness=tables.readiness_table(audit),
            rejections=tables.rejections_table(audit),
            drift=tables.drift_table(audit),
            calibration=tables.calibration_table(audit),
            factors=tables.factors_table(audit),
            readout=tables.readout_table(audit),
        ),
        geo_verdicts=tables.geo_verdicts(audit),
        valueless_notes=tables.valueless_note(audit),
        readout_verdicts=tables.readout_verdicts(audit),
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
