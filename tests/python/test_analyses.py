"""analyses/event_delivery_history.sql, compiled as the README says and run on a warehouse with
an outbox, receipts and runs written here: one row per receipt, a never-sent event once, another
event's receipts left out."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from dbt_harness import run_dbt

EVENT = "purchase-ORD-1'x"  # a quote in the id: the analysis escapes it


def warehouse(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema tiktok")
        con.execute("""create table tiktok.tiktok_events_outbox as
            select * from (values
                (?, 'CompletePayment', 'web', 'PIX', 'treatment', 12.5, 'USD', null),
                ('purchase-ORD-2', 'CompletePayment', 'web', 'PIX', 'treatment', 3.0, 'USD', null),
                ('purchase-ORD-3', 'CompletePayment', 'web', 'PIX', 'holdout', 9.0, 'USD', null)
            ) as t(event_id, event, event_source, event_source_id, experiment_cell, value, currency, is_erased),
            (select timestamp '2026-11-20 10:00' as outboxed_at)""",
                    [EVENT])
        con.execute("""create table tiktok.tiktok_delivery_runs as
            select * from (values ('r1', timestamp '2026-11-20 11:00', 'completed'),
                                  ('r2', timestamp '2026-11-20 12:00', 'completed'))
            as t(run_id, started_at, outcome)""")
        con.execute("""create table tiktok.tiktok_delivery_receipts as
            select * from (values
                ('r1', ?, 'CompletePayment', 'PIX', 1, timestamp '2026-11-20 11:00:01', timestamp '2026-11-20 11:00:02',
                 'failed', 503, null, 'unavailable', 'q1', null, 'h1'),
                ('r2', ?, 'CompletePayment', 'PIX', 1, timestamp '2026-11-20 12:00:01', timestamp '2026-11-20 12:00:02',
                 'delivered', 200, 0, 'OK', 'q2', null, 'h1'),
                ('r2', 'purchase-ORD-2', 'CompletePayment', 'PIX', 1, timestamp '2026-11-20 12:00:01',
                 timestamp '2026-11-20 12:00:02', 'delivered', 200, 0, 'OK', 'q2', null, 'h2')
            ) as t(run_id, event_id, event, event_source_id, attempt, sent_at, acknowledged_at, status, http_status,
                   api_code, api_message, request_id, test_event_code, payload_sha256)""", [EVENT, EVENT])


def history(tmp_path: Path, event_id: str) -> list[tuple]:
    path = tmp_path / "warehouse.duckdb"
    if not path.exists():
        warehouse(path)
    target = tmp_path / f"target-{len(event_id)}"
    run_dbt(["compile", "--select", "analyses/event_delivery_history.sql", "--target-path", str(target),
             "--vars", json.dumps({"tiktok_audit_event_id": event_id})], path)
    sql = (target / "compiled" / "tiktok_outbox" / "analyses" / "event_delivery_history.sql").read_text()
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"select event_id, run_id, run_outcome, status, api_message from ({sql})").fetchall()


def test_one_row_per_receipt_of_the_event(tmp_path: Path) -> None:
    assert history(tmp_path, EVENT) == [
        (EVENT, "r1", "completed", "failed", "unavailable"),
        (EVENT, "r2", "completed", "delivered", "OK"),
    ]


def test_an_event_never_sent_has_one_row_without_receipt(tmp_path: Path) -> None:
    assert history(tmp_path, "purchase-ORD-3") == [("purchase-ORD-3", None, None, None, None)]
