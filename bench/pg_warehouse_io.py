#!/usr/bin/env python3
"""PostgreSQL warehouse I/O at scale: the pending-rows read and the receipts append, each the way
the sender does it (ADBC) against the way it did before (psycopg2), on a throwaway cluster.

Usage::

    python bench/pg_warehouse_io.py --rows 1000000 [--repeat 3] [--chunk-rows 2048]

On a new cluster (scripts/pg_cluster.py) it fills `tiktok.tiktok_events_outbox` with `--rows`
synthetic rows of the outbox's columns, then times, each method in a child process of its own:

- read, `cursor`: the pending query through a psycopg2 named (server-side) cursor, `FETCH` of
  `--chunk-rows` rows turned into an OUTBOX_SCHEMA batch, as the sender read before ADBC;
- read, `adbc`: `PostgresWarehouse.open_pending` (one binary COPY through the ADBC driver, cut
  into batches of `--chunk-rows`);
- append, `copy_csv`: `--rows` receipts written as CSV by pyarrow and sent with psycopg2's
  `COPY ... FROM STDIN (FORMAT csv)`, as the sender appended before ADBC;
- append, `adbc`: `PostgresWarehouse.append_receipts` (ADBC bulk ingestion, one binary COPY).

Each figure is the median of `--repeat` runs: wall seconds of the operation, and the child's
peak RSS growth over its RSS just before the operation (the receipts table is built before
that point), sampled every millisecond during the operation. A table on stdout and
`bench/results_pg_io.json`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
TERMINAL = ("delivered", "rejected", "expired")
METHODS = {"read": ("cursor", "adbc"), "append": ("copy_csv", "adbc")}


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The peak RSS of this process while the block runs, sampled every millisecond."""

    def __enter__(self) -> PeakRss:
        self.bytes = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.bytes = max(self.bytes, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.bytes = max(self.bytes, rss_bytes())


def target(env: dict[str, str]) -> Any:
    from tiktok_sender.profiles import WarehouseTarget

    options = {"host": env["TIKTOK_PG_HOST"], "port": int(env["TIKTOK_PG_PORT"]),
               "user": env["TIKTOK_PG_USER"], "dbname": env["TIKTOK_PG_DATABASE"]}
    return WarehouseTarget(profile="bench", target="postgres", type="postgres", schema="tiktok",
                           path=None, options=options)


def fill_outbox(cluster: Any, rows: int) -> None:
    """`rows` outbox rows (every column of OUTBOX_COLUMNS, strings of realistic widths)."""
    from tiktok_sender.tables.outbox import CONTRACT_TYPES, OUTBOX_COLUMNS

    values = {"event_time": "1767225600 + i", "value": "mod(i, 500) / 3.0",
              "event_id": "'evt-' || i", "event_source_id": "'CBENCHPIXEL0000000001'"}
    select = ", ".join(
        f"{values.get(c, 'md5(i::text || ' + repr(c) + ')')}::{CONTRACT_TYPES[c]} as {c}"
        for c in OUTBOX_COLUMNS)
    cluster.query("create schema tiktok")
    cluster.query(f"create table tiktok.tiktok_events_outbox as select {select}"
                  f" from generate_series(1, {rows}) as i")
    cluster.query("analyze tiktok.tiktok_events_outbox")


def receipts_table(rows: int) -> Any:
    """`rows` receipts of RECEIPT_COLUMNS (all set, as a delivered receipt has them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from tiktok_sender.tables.receipts import RECEIPT_COLUMNS

    numbers = pa.array(range(rows), pa.int64())
    text = pc.binary_join_element_wise("r-", pc.cast(numbers, pa.string()), "")
    columns = []
    for column in RECEIPT_COLUMNS:
        if pa.types.is_string(column.arrow):
            columns.append(text)
        elif pa.types.is_timestamp(column.arrow):
            columns.append(pc.cast(pc.multiply(numbers, 1_000_000), pa.timestamp("us")))
        else:
            columns.append(pc.cast(pc.remainder(numbers, 1000), column.arrow))
    return pa.table(columns, names=[c.name for c in RECEIPT_COLUMNS])


def read_cursor(warehouse: Any, chunk_rows: int) -> int:
    import psycopg2
    import pyarrow as pa

    from tiktok_sender.tables.outbox import OUTBOX_SCHEMA

    sql, params = warehouse._pending_sql(warehouse.plan_pending(TERMINAL, None))
    o = warehouse.target.options
    con = psycopg2.connect(host=o["host"], port=o["port"], user=o["user"], dbname=o["dbname"])
    con.set_session(readonly=True)
    cursor = con.cursor(name="bench_pending")
    cursor.itersize = chunk_rows
    cursor.execute(sql, tuple(params))
    total = 0
    while rows := cursor.fetchmany(chunk_rows):
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(c, type=f.type) for c, f in zip(columns, OUTBOX_SCHEMA, strict=True)]
        total += pa.RecordBatch.from_arrays(arrays, schema=OUTBOX_SCHEMA).num_rows
    con.close()
    return total


def read_adbc(warehouse: Any, chunk_rows: int) -> int:
    reader = warehouse.open_pending(warehouse.plan_pending(TERMINAL, None), chunk_rows)
    total = 0
    while (batch := reader.next()) is not None:
        total += batch.num_rows
    reader.close()
    return total


def append_copy_csv(warehouse: Any, table: Any) -> int:
    import psycopg2
    import pyarrow.csv as pacsv

    o = warehouse.target.options
    con = psycopg2.connect(host=o["host"], port=o["port"], user=o["user"], dbname=o["dbname"])
    con.autocommit = True
    data = io.BytesIO()
    pacsv.write_csv(table, data, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    data.seek(0)
    columns = ", ".join(f'"{n}"' for n in table.column_names)
    with con.cursor() as cur:
        cur.copy_expert(f"copy {warehouse.receipts} ({columns}) from stdin with (format csv)", data)
    con.close()
    return table.num_rows


def append_adbc(warehouse: Any, table: Any) -> int:
    warehouse.append_receipts(table)
    return table.num_rows


def child(kind: str, method: str, rows: int, chunk_rows: int) -> dict[str, Any]:
    """One measurement, in this process: the operation's wall time and peak RSS growth."""
    from tiktok_sender.warehouse import open_warehouse

    warehouse = open_warehouse(target(dict(os.environ)))
    try:
        operation: Callable[[], int]
        if kind == "read":
            function = read_cursor if method == "cursor" else read_adbc
            operation = lambda: function(warehouse, chunk_rows)  # noqa: E731
        else:
            table = receipts_table(rows)
            function = append_copy_csv if method == "copy_csv" else append_adbc
            operation = lambda: function(warehouse, table)  # noqa: E731
        before = rss_bytes()
        with PeakRss() as peak:
            started = time.perf_counter()
            done = operation()
            wall = time.perf_counter() - started
    finally:
        warehouse.close()
    return {"rows": done, "wall_s": wall, "peak_growth_mb": max(peak.bytes - before, 0) / 2**20}


def measure(env: dict[str, str], kind: str, method: str, args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for _ in range(args.repeat):
        if kind == "append":
            args.cluster.query("truncate tiktok.tiktok_delivery_receipts",
                               dbname=env["TIKTOK_PG_DATABASE"])
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, method, "--rows", str(args.rows),
             "--chunk-rows", str(args.chunk_rows)],
            env={**os.environ, **env}, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    return {"kind": kind, "method": method, "rows": runs[0]["rows"],
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "peak_growth_mb": statistics.median(r["peak_growth_mb"] for r in runs), "runs": runs}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from pg_cluster import cluster

    from tiktok_sender.warehouse import open_warehouse

    with cluster() as pg:
        args.cluster = pg
        env = {k: v for k, v in pg.env.items() if k.startswith("TIKTOK_PG_")}
        fill_outbox(pg, args.rows)
        warehouse = open_warehouse(target(env))
        warehouse.ensure_delivery_tables()
        warehouse.close()
        return [measure(env, kind, method, args) for kind, methods in METHODS.items()
                for method in methods]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=2048, help="the sender's read chunk")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results_pg_io.json")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "METHOD"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.rows, args.chunk_rows)))
        return 0
    results = run(args)
    print(f"{'operation':<8} {'method':<9} {'rows':>9} {'wall s':>8} {'peak RSS growth MB':>19}")
    for r in results:
        print(f"{r['kind']:<8} {r['method']:<9} {r['rows']:>9} {r['wall_s']:>8.2f} "
              f"{r['peak_growth_mb']:>19.0f}")
    args.out.write_text(json.dumps({"rows": args.rows, "repeat": args.repeat,
                                    "chunk_rows": args.chunk_rows, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
