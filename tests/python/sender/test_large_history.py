"""A warehouse with a long delivery history: up to a million outbox rows, all but a few delivered.

The pending query is an anti join of the outbox against the terminal receipts under the sender's
DuckDB memory limit. Its hash table of the receipt keys spills to disk at 64 MB up to
MANY_RECEIPT_KEYS keys; past them the run raises DuckDB's limit to 1 GB (64 MB holds 850,000 keys
of the outbox as it is now and fails at 1.3 million: `warehouse.duckdb`, README "Performance")."""

from __future__ import annotations

import pytest
from sender_harness import Project

from tiktok_emulator import EmulatorThread
from tiktok_sender.tables.receipts import RECEIPT_COLUMNS
from tiktok_sender.warehouse.duckdb import MANY_RECEIPT_KEYS

HISTORY = 1_000_000
NEW = 100
SMALL_MEMORY = ("--duckdb-memory-limit", "64MB")
RAISED = "DuckDB's memory limit is raised from 64MB to 1GB"


def deliver_all_but_the_newest(project: Project, history: int) -> None:
    """`history` + NEW outbox rows, every one but the NEW most recent delivered by an earlier run."""
    project.outbox.add(history + NEW - project.outbox.rows, start=project.outbox.rows)
    body = ", ".join(f'"{c.name}" {c.sql}' for c in RECEIPT_COLUMNS)
    with project.outbox.connect() as con:
        con.execute(f"create table tiktok.tiktok_delivery_receipts ({body})")
        con.execute(
            """insert into tiktok.tiktok_delivery_receipts by name
               select 'r-' || event_id as receipt_id, 'earlier-run' as run_id, event_id, event, event_time,
                      'delivered' as status, 1 as attempt, 200 as http_status, 0 as api_code, 'OK' as api_message,
                      now()::timestamp as sent_at, now()::timestamp as acknowledged_at,
                      event_source_id, event_source
               from tiktok.tiktok_events_outbox
               order by event_time desc
               offset ?""",
            [NEW],
        )


@pytest.mark.parametrize(("history", "raised"), [(MANY_RECEIPT_KEYS, False), (HISTORY, True)],
                         ids=["at-the-threshold-64MB-spills", "a-million-raises-the-limit"])
def test_a_push_over_a_long_history_sends_only_the_new_events(
    project: Project, emulator: EmulatorThread, history: int, raised: bool
) -> None:
    deliver_all_but_the_newest(project, history)
    result = project.sender("push", "--json", *SMALL_MEMORY, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = result.json()
    assert (summary["pending"], summary["delivered"]) == (NEW, NEW)
    assert len(emulator.events()) == NEW
    assert (RAISED in result.stderr) is raised, result.stderr


LIMITED = 600_000


def test_a_large_limit_sorts_the_pending_rows_on_disk_instead_of_failing(project: Project) -> None:
    """`--limit N` sends the N oldest pending events. Sorting a million pending rows does not fit
    a small DuckDB memory limit: the sort must spill to disk (a top-N in memory failed with
    "Out of Memory Error" at 64 MB, which such a run raises to 128 MB)."""
    project.outbox.add(HISTORY - project.outbox.rows, start=project.outbox.rows)
    result = project.sender("push", "--dry-run", "--json", "--limit", str(LIMITED), *SMALL_MEMORY, timeout=300,
                            env={"TIKTOK_ACCESS_TOKEN": None})
    assert result.returncode == 0, result.stderr
    summary = result.json()
    assert summary["pending"] == LIMITED
    assert summary["sent"] + summary["expired"] + summary["rejected"] == LIMITED
