"""Tests of scripts/bench_history.py: the synthetic delivery history of `bench.py --history`
settles only its own rows, uses the sender's receipt columns, and orders `outbox_seq` (when the
outbox has it) history < new rows < appended rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from scripts_loader import load_script

from tiktok_sender.tables.receipts import RECEIPT_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
OUTBOX = "tiktok.tiktok_events_outbox"


history = load_script("bench_history")


def source_outbox(path: Path, rows: int, with_seq: bool) -> Path:
    seq = ", cast(1 + i % 2 as bigint) as outbox_seq" if with_seq else ""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema tiktok")
        con.execute(f"""create table {OUTBOX} as select 'ev-' || i as event_id, 'c-' || i as conversion_id,
            'CompletePayment' as event, 'web' as event_source, 'PIXEL1' as event_source_id,
            cast(1760000000 + i as bigint) as event_time, to_timestamp(1760000000 + i)::timestamp as converted_at,
            'treatment' as experiment_cell{seq}
            from range(?) as t(i)""", [rows])
    return path


@pytest.mark.parametrize("with_seq", [False, True])
def test_history_settles_only_its_own_rows(tmp_path: Path, with_seq: bool) -> None:
    source = source_outbox(tmp_path / "source.duckdb", 7, with_seq)
    db = tmp_path / "bench.duckdb"

    built = history.build(source, db, OUTBOX, 20)
    history.append_new(db, source, OUTBOX, 2)

    assert built == {"history_rows": 20, "new_rows": 7, "has_outbox_seq": with_seq}
    with duckdb.connect(str(db), read_only=True) as con:
        columns = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_name = 'tiktok_delivery_receipts'"
            " order by ordinal_position").fetchall()]
        assert columns == [c.name for c in RECEIPT_COLUMNS]
        pending = con.execute(f"""select o.event_id from {OUTBOX} o where not exists (
            select 1 from tiktok.tiktok_delivery_receipts r where r.status = 'delivered'
            and r.event_source_id = o.event_source_id and r.event = o.event and r.event_id = o.event_id)
            order by o.event_id""").fetchall()
        assert sorted(r[0] for r in pending) == sorted(
            [f"ev-{i}" for i in range(7)] + ["ev-0-a1", "ev-1-a1"])
        receipts = con.execute("select count(*), count(distinct event_id), count(distinct receipt_id)"
                               " from tiktok.tiktok_delivery_receipts").fetchone()
        assert receipts == (20, 20, 20)
        # the run that delivered the history, complete, with its mark where the outbox has one
        runs = con.execute("select run_id, outcome, delivered, outbox_seq_through"
                           " from tiktok.tiktok_delivery_runs").fetchall()
        assert runs == [(history.HISTORY_RUN_ID, "success", 20, 0 if with_seq else None)]
        # older than the new work: each copy a further HISTORY_STEP_DAYS back
        oldest_new = con.execute(f"select min(event_time) from {OUTBOX} where event_id not like '%-h%'").fetchone()
        newest_history = con.execute(f"select max(event_time) from {OUTBOX} where event_id like '%-h%'").fetchone()
        assert newest_history[0] < oldest_new[0] - (history.HISTORY_STEP_DAYS - 1) * 86400
        assert con.execute(f"select count(*) from {OUTBOX} where epoch(converted_at)::bigint <> event_time"
                           ).fetchone() == (0,)
        if with_seq:
            seqs = dict(con.execute(f"""select case when event_id like '%-h%' then 'history'
                    when event_id like '%-a1' then 'appended' else 'new' end, max(outbox_seq)
                from {OUTBOX} group by 1""").fetchall())
            lowest_new = con.execute(f"select min(outbox_seq) from {OUTBOX} where event_id not like '%-h%'")
            assert seqs["history"] < lowest_new.fetchone()[0]
            assert seqs["appended"] > seqs["new"]


def test_no_history_is_the_outbox_alone(tmp_path: Path) -> None:
    source = source_outbox(tmp_path / "source.duckdb", 5, True)
    db = tmp_path / "bench.duckdb"

    assert history.build(source, db, OUTBOX, 0)["new_rows"] == 5

    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(f"select count(*), min(outbox_seq) from {OUTBOX}").fetchone() == (5, 1)
        assert not con.execute("select * from information_schema.tables"
                               " where table_name = 'tiktok_delivery_receipts'").fetchall()
