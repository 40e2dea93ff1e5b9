"""Warehouses for the benchmark's push over a delivery history (`scripts/bench.py --history N`).

From the outbox of a finished benchmark run (the source), two DuckDB warehouses:

- `empty`: the source outbox as it is, no receipts;
- `history`: the same outbox rows (the new work) plus N synthetic history rows: source rows
  replicated with fresh `event_id` and `conversion_id` values (`-h<copy>`), each with one
  synthetic `delivered` receipt in the receipts table, which is created with the sender's own
  columns (`receipts.RECEIPT_COLUMNS`). The runs table is left alone: no run covers the history.
  History rows keep the event times of the rows they copy, so their receipts are as recent as
  the new events: a bound on event age in the pending read leaves none of them out.

Where the outbox has an `outbox_seq` column (the per-build sequence), the history rows get 0 and
the new rows their own value plus one, so that the history is older than every new row; the rows
`append_new` adds later get the highest value plus one. Without the column, nothing is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb

from tiktok_sender import __version__
from tiktok_sender.receipts import RECEIPT_COLUMNS, RECEIPTS_TABLE

SEQ = "outbox_seq"
HISTORY_RUN_ID = "bench-history"


def has_column(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str, column: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.columns where table_catalog = ? and table_schema = ?"
        " and table_name = ? and column_name = ?", [catalog, schema, table, column]).fetchone()
    return bool(row and row[0])


def renamed(suffix: str, seq: str | None = None, star: str = "*") -> str:
    """`select * replace (...)` of outbox rows copied under new ids (`<id><suffix>`), their
    `outbox_seq` set to the SQL `seq` when given."""
    parts = [f"event_id || {suffix} as event_id", f"conversion_id || {suffix} as conversion_id"]
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


def receipts_ddl(relation: str) -> str:
    columns = ", ".join(f"{c.name} {c.sql}" for c in RECEIPT_COLUMNS)
    return f"create table {relation} ({columns})"


def receipts_select(outbox: str) -> str:
    """One delivered receipt per row of `outbox`; columns not in `receipt_values` are null."""
    values = receipt_values()
    columns = ", ".join(f"{values.get(c.name, 'null')} as {c.name}" for c in RECEIPT_COLUMNS)
    return f"select {columns} from {outbox} as o"


def build(source: Path, db: Path, outbox: str, history: int) -> dict[str, int | bool]:
    """The warehouse `db`: the outbox of `source`, and with `history` > 0 that many synthetic
    history rows and receipts before it. Returns the row counts and whether `outbox_seq` exists."""
    schema, table = outbox.split(".")
    with duckdb.connect(str(db)) as con:
        con.execute(f"attach '{source}' as src (read_only)")
        count = con.execute(f"select count(*) from src.{outbox}").fetchone()
        new = int(count[0]) if count else 0
        if new == 0:
            raise SystemExit("bench: the source outbox is empty")
        seq = has_column(con, "src", schema, table, SEQ)
        con.execute(f"create schema {schema}")
        if history:
            copies = -(-history // new)
            con.execute(f"""create table {outbox} as
                select {renamed("'-h' || copy", "0" if seq else None, "o.*")}
                from src.{outbox} as o, range({copies}) as t(copy) limit {history}""")
            receipts = f"{schema}.{RECEIPTS_TABLE}"
            con.execute(receipts_ddl(receipts))
            con.execute(f"insert into {receipts} {receipts_select(outbox)}")
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
