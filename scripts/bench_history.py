"""Warehouses for the benchmark's push over a delivery history (`scripts/bench.py --history N`).

From the outbox of a finished benchmark run (the source), two DuckDB warehouses:

- `empty`: the source outbox as it is, no receipts;
- `history`: the same outbox rows (the new work) plus N synthetic history rows: source rows
  replicated with fresh `event_id` and `conversion_id` values (`-h<copy>`), each with one
  synthetic `delivered` receipt in the receipts table, which is created with the sender's own
  columns (`receipts.RECEIPT_COLUMNS`), as is the runs table.

The history is what months of deliveries leave: copy k of the source rows is moved HISTORY_STEP_DAYS
x (k + 1) days back in time (event_time and converted_at), so it is older than the new work, and
the run that delivered it is in the runs table, complete, with the mark of what it read through
(`outbox_seq_through`, the history's outbox_seq): the push of the new work is a steady-state run,
as it would be in production. Where the outbox has no `outbox_seq` column (an older dbt project),
nothing marks the history and the sender reads it whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from tiktok_sender import __version__
from tiktok_sender.tables.receipts import RECEIPT_COLUMNS, RECEIPTS_TABLE, RUN_COLUMNS, RUNS_TABLE, Column

SEQ = "outbox_seq"
HISTORY_RUN_ID = "bench-history"
HISTORY_STEP_DAYS = 30


def has_column(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str, column: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.columns where table_catalog = ? and table_schema = ?"
        " and table_name = ? and column_name = ?", [catalog, schema, table, column]).fetchone()
    return bool(row and row[0])


def renamed(suffix: str, seq: str | None = None, star: str = "*", back_s: str | None = None) -> str:
    """`select * replace (...)` of outbox rows copied under new ids (`<id><suffix>`), their
    `outbox_seq` set to the SQL `seq` when given, moved `back_s` seconds (SQL) back in time."""
    parts = [f"event_id || {suffix} as event_id", f"conversion_id || {suffix} as conversion_id"]
    if back_s is not None:
        parts += [f"event_time - {back_s} as event_time",
                  f"converted_at - to_seconds({back_s}) as converted_at"]
    if seq is not None:
        parts.append(f"cast({seq} as bigint) as {SEQ}")
    return f"{star} replace ({', '.join(parts)})"


def receipt_values() -> Mapping[str, str]:
    """SQL of each receipt column for one history row `o` of the outbox: delivered, long ago."""
    sent = "make_timestamp(o.event_time * 1000000)"
    return {
        "receipt_id": "replace(cast(gen_random_uuid() as varchar), '-', '')",
        "run_id": f"'{HISTORY_RUN_ID}'",
        "event_id": "o.event_id", "event": "o.event", "event_time": "o.event_time",
        "status": "'delivered'", "attempt": "1", "http_status": "200", "api_code": "0",
        "api_message": "'OK'", "request_id": f"'{HISTORY_RUN_ID}'",
        "sent_at": sent, "acknowledged_at": sent,
        "payload_sha256": "sha256(o.event_id)", "experiment_cell": "o.experiment_cell",
        "sender_version": f"'{__version__}'", "event_source_id": "o.event_source_id",
        "event_source": "o.event_source",
    }


def ddl(relation: str, columns: Sequence[Column]) -> str:
    return f"create table {relation} ({', '.join(f'{c.name} {c.sql}' for c in columns)})"


def receipts_ddl(relation: str) -> str:
    return ddl(relation, RECEIPT_COLUMNS)


def receipts_select(outbox: str) -> str:
    """One delivered receipt per row of `outbox`; columns not in `receipt_values` are null."""
    values = receipt_values()
    columns = ", ".join(f"{values.get(c.name, 'null')} as {c.name}" for c in RECEIPT_COLUMNS)
    return f"select {columns} from {outbox} as o"


def attach_source(con: duckdb.DuckDBPyConnection, source: Path, outbox: str) -> int:
    """Attach the warehouse `source` read-only as `src`; the number of rows of its `outbox`
    (SystemExit when it has none)."""
    con.execute(f"attach '{source}' as src (read_only)")
    count = con.execute(f"select count(*) from src.{outbox}").fetchone()
    rows = int(count[0]) if count else 0
    if rows == 0:
        raise SystemExit("bench: the source outbox is empty")
    return rows


def build(source: Path, db: Path, outbox: str, history: int) -> dict[str, int | bool]:
    """The warehouse `db`: the outbox of `source`, and with `history` > 0 that many synthetic
    history rows and receipts before it. Returns the row counts and whether `outbox_seq` exists."""
    schema, table = outbox.split(".")
    with duckdb.connect(str(db)) as con:
        new = attach_source(con, source, outbox)
        seq = has_column(con, "src", schema, table, SEQ)
        con.execute(f"create schema {schema}")
        if history:
            copies = -(-history // new)
            back = f"(copy + 1) * {HISTORY_STEP_DAYS * 86400}"
            con.execute(f"""create table {outbox} as
                select {renamed("'-h' || copy", "0" if seq else None, "o.*", back)}
                from src.{outbox} as o, range({copies}) as t(copy) limit {history}""")
            receipts = f"{schema}.{RECEIPTS_TABLE}"
            con.execute(receipts_ddl(receipts))
            con.execute(f"insert into {receipts} {receipts_select(outbox)}")
            runs = f"{schema}.{RUNS_TABLE}"
            con.execute(ddl(runs, RUN_COLUMNS))
            con.execute(
                f"insert into {runs} (run_id, started_at, finished_at, outcome, settings, pending, sent,"
                f" delivered, sender_version, dry_run, held, outbox_seq_through) values (?, ?, ?, 'success',"
                f" ?, ?, ?, ?, ?, false, 0, ?)",
                [HISTORY_RUN_ID, *(datetime.now(UTC).replace(tzinfo=None),) * 2,
                 '{"max_age_days": 28.0}', history, history, history, __version__, 0 if seq else None])
            later = f"* replace ({SEQ} + 1 as {SEQ})" if seq else "*"
            con.execute(f"insert into {outbox} select {later} from src.{outbox}")
        else:
            con.execute(f"create table {outbox} as select * from src.{outbox}")
        con.execute("detach src")
    return {"history_rows": history, "new_rows": new, "has_outbox_seq": seq}


def append_new(db: Path, source: Path, outbox: str, rows: int, tag: str = "a1") -> int:
    """Append `rows` rows of the `source` outbox to the outbox of `db` under fresh ids
    (`-<tag>`), with the highest `outbox_seq` plus one when the column exists; returns `rows`."""
    schema, table = outbox.split(".")
    with duckdb.connect(str(db)) as con:
        con.execute(f"attach '{source}' as src (read_only)")
        row = con.execute("select current_database()").fetchone()
        catalog = str(row[0]) if row else ""
        seq = f"(select max({SEQ}) + 1 from {outbox})" if has_column(con, catalog, schema, table, SEQ) else None
        select = renamed(f"'-{tag}'", seq)
        con.execute(f"insert into {outbox} select {select} from src.{outbox} limit {rows}")
        con.execute("detach src")
    return rows
