"""Build and deliver the demo outbox to a local emulator and show what happened (`make demo`).

Starts the emulator (`python -m tiktok_emulator`) on a free loopback port, replays the last days
of scheduled builds and pushes against it with a demo token (`demo_replay.py`), pushes once more to
show that nothing is sent twice, prints a few receipts and what the emulator accepted, and stops
the emulator whatever happens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import duckdb
from demo_replay import replay

BIN = Path(sys.executable).parent
DEMO_TOKEN = "demo-access-token"  # the emulator's token; never a real one


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiktok_emulator", "--port", "0", "--token", DEMO_TOKEN],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = next((word for word in line.split() if word.startswith("http://")), None)
    if url is None:
        proc.terminate()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return proc, url


def main() -> int:
    emulator, url = start_emulator()
    try:
        env = {**os.environ, "TIKTOK_ACCESS_TOKEN": DEMO_TOKEN, "TIKTOK_API_URL": url}
        print(f"\n$ dbt run --select +tiktok_events_outbox && sender push   (TIKTOK_API_URL={url}), on a schedule",
              flush=True)
        replay(env)
        print("\n$ sender push   (again: nothing is pending, nothing is sent)", flush=True)
        again = subprocess.run([str(BIN / "sender"), "push"], env=env, check=False, capture_output=True, text=True)
        print(again.stdout.splitlines()[0] if again.stdout else again.stderr)

        stats_url = url.split("/open_api/")[0] + "/_emulator/stats"
        with urllib.request.urlopen(stats_url, timeout=5) as response:  # loopback only
            stats = json.load(response)
        print(f"\nemulator accepted: {json.dumps(stats, sort_keys=True)}")

        path = os.environ.get("DBT_DUCKDB_PATH", "target/tiktok_outbox.duckdb")
        with duckdb.connect(path, read_only=True) as con:
            print("\nlatest receipts (tiktok.tiktok_delivery_receipts):")
            con.sql(
                """select event_id, event, status, attempt, http_status, api_code, experiment_cell,
                          sent_at, acknowledged_at
                   from tiktok.tiktok_delivery_receipts order by sent_at desc limit 5"""
            ).show()
            print("conversion to delivery, after the first run (the backfill):")
            con.sql(
                """select event, count(*) as events,
                          round(quantile_cont(hours, 0.5), 1) as p50_hours,
                          round(quantile_cont(hours, 0.9), 1) as p90_hours,
                          round(max(hours), 1) as max_hours
                   from (select outbox.event,
                                epoch(receipts.sent_at - outbox.converted_at) / 3600 as hours
                         from tiktok.tiktok_delivery_receipts as receipts
                         inner join tiktok.tiktok_events_outbox as outbox
                             using (event_source_id, event, event_id)
                         where receipts.status = 'delivered'
                           and receipts.sent_at > (select min(sent_at) + interval 1 hour
                                                   from tiktok.tiktok_delivery_receipts))
                   group by event order by events desc"""
            ).show()
        return again.returncode
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
