"""Print a short summary of the built outbox and its exclusions (used by `make demo`)."""

from __future__ import annotations

import os
import sys

import duckdb


def main() -> int:
    path = os.environ.get("DBT_DUCKDB_PATH", "target/tiktok_outbox.duckdb")
    with duckdb.connect(path, read_only=True) as con:
        print("\ntiktok_events_outbox by business model and event:")
        con.sql(
            """select business_model, event, event_source, experiment_cell, count(*) as events,
                      round(avg(value), 2) as avg_value, count(ttclid) as with_ttclid
               from tiktok.tiktok_events_outbox group by all order by all"""
        ).show(max_rows=50)
        print("tiktok_events_excluded by reason:")
        con.sql(
            """select exclusion_reason, count(*) as conversions
               from tiktok.tiktok_events_excluded group by all order by 2 desc"""
        ).show(max_rows=50)
    return 0


if __name__ == "__main__":
    sys.exit(main())
