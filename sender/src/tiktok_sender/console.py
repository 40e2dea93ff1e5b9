"""What `sender push` and `sender status` print on stdout: the run summary and the status report,
as text or JSON. (A push's progress on stderr: `delivery.progress`.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from tiktok_sender.delivery.run_state import RunResult
from tiktok_sender.warehouse.history import StatusReport


def render_json(data: Any) -> str:
    return orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode()


def render_run(result: RunResult, *, as_json: bool) -> str:
    data = result.to_dict()
    if as_json:
        return render_json(data)
    title = "sender push --dry-run" if result.dry_run else "sender push"
    lines = [f"{title}: {data['outcome']} (exit {data['exit_code']})"]
    if data["message"]:
        lines.append(f"  {data['message']}")
    verb = "would send" if result.dry_run else "sent"
    rows = [
        ("run_id", data["run_id"]),
        ("api_url", data["api_url"]),
        ("test_event_code", data["test_event_code"] or "-"),
        ("pending", f"{data['pending']:,}"),
        (verb, f"{data['sent']:,} events in {data['requests']:,} request(s)"),
        ("delivered", f"{data['delivered']:,}"),
        ("rejected", f"{data['rejected']:,}"),
        ("failed", f"{data['failed']:,}"),
        ("expired", f"{data['expired']:,}"),
        ("held", f"{data['held']:,} (never sent: their event source stopped; still pending)"),
        ("failure rate", f"{data['failure_rate']:.4f} (max {data['max_failure_rate']})"),
        ("elapsed", f"{data['elapsed_s']:.2f} s, {data['events_per_s']:,.0f} events/s"),
    ]
    lines += [f"  {k:<16}{v}" for k, v in rows]
    for stopped in data["stopped_sources"]:
        lines.append(f"  stopped {stopped['event_source']} {stopped['event_source_id']}: "
                     f"{stopped['reason']}")
    if data["groups"]:
        lines.append("  by event source:")
        lines += [
            f"    {g['event_source']:<8}{g['event_source_id']:<28}{g['events']:>10,}"
            for g in data["groups"]
        ]
    if data["problems"]:
        lines.append("  problems:")
        lines += [
            f"    {p['events']:>8,}  {p['status']:<9}{p['api_code'] if p['api_code'] is not None else '-':<7}"
            f"{p['message']}"
            for p in data["problems"]
        ]
    return "\n".join(lines)


def status_dict(report: StatusReport) -> dict[str, Any]:
    last = dict(report.last_run) if report.last_run else None
    if last is not None:
        last.pop("settings", None)
        for key, value in last.items():
            if isinstance(value, datetime):
                last[key] = value.isoformat() + "Z"
    return {
        "outbox": report.outbox,
        "pending": report.pending,
        "never_sent": report.never_sent,
        "failed": report.failed,
        "delivered": report.delivered,
        "rejected": report.rejected,
        "expired": report.expired,
        "test_events": report.test_events,
        "null_key_rows": report.null_key,
        "last_run": last,
        "top_errors": list(report.top_errors),
    }


def render_status(report: StatusReport, *, as_json: bool) -> str:
    data = status_dict(report)
    if as_json:
        return render_json(data)
    lines = ["outbox delivery status (production receipts)"]
    for key in ("outbox", "pending", "never_sent", "failed", "delivered", "rejected", "expired"):
        lines.append(f"  {key:<14}{data[key]:>12,}")
    lines.append(f"  {'test events':<14}{data['test_events']:>12,}  (sent with a test event code)")
    if data["null_key_rows"]:
        lines.append(f"  {'null-key rows':<14}{data['null_key_rows']:>12,}  (outbox rows without "
                     "event_source_id, event or event_id: never sendable, each rejected once)")
    last = data["last_run"]
    if last:
        lines.append(
            f"last run {last['run_id']}: {last['outcome']}, started {last['started_at']}, "
            f"delivered {last['delivered']}, rejected {last['rejected']}, failed {last['failed']}, "
            f"expired {last['expired']}{' (dry run)' if last['dry_run'] else ''}"
        )
    else:
        lines.append("last run: none")
    if data["top_errors"]:
        lines.append("top errors (receipts):")
        for e in data["top_errors"]:
            code = e["api_code"] if e["api_code"] is not None else "-"
            lines.append(f"  {e['receipts']:>10,}  {e['status']:<9}{code!s:<7}{e['example'] or ''}")
    return "\n".join(lines)
