#!/usr/bin/env python3
"""Replay simulated time hour by hour: a stream of orders whose checkout sessions land 0-90
minutes late, plus the hand-written scenarios of tests/python/test_timeline.py, built with dbt
and pushed to the emulator at every hour; then compare with the oracle and print the settle
figures. The world, the oracle and the replay live in tests/python/timeline_replay.py.

Usage::

    python scripts/timeline_replay.py [--days 14] [--every-minutes 60] [--orders-per-hour 4] [--workdir DIR]

Builds run every --every-minutes (a divisor of 60); the purchase event is renamed with a full
refresh at hour 9 and the experiment salt changed with a full refresh at hour 11, as in the test.

Exits 1 when what the emulator received differs from what the oracle expects.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

import timeline_replay as tl  # noqa: E402

from tiktok_emulator import EmulatorThread  # noqa: E402
from tiktok_sender.settings import Secret  # noqa: E402

TOKEN = "timeline-replay-token-2b7e"
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--every-minutes", type=int, default=60, choices=(5, 10, 15, 20, 30, 60))
    parser.add_argument("--orders-per-hour", type=float, default=4)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    hours = int(args.days * 24)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="timeline-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = tl.sender_env(workdir, TOKEN)
    start = tl.start_of_replay(hours)
    world = tl.make_world(start, hours, late_orders_per_hour=args.orders_per_hour)
    rename, new_salt = start + timedelta(hours=9), start + timedelta(hours=11)
    times = [start + timedelta(minutes=m) for m in range(0, hours * 60 + 1, args.every_minutes)]
    builds = [tl.Build(at=at, full_refresh=at in (rename, new_salt),
                       purchase_event="Purchase" if at >= rename else "CompletePayment",
                       salt="timeline-salt-2" if at >= new_salt else "timeline-salt-1") for at in times]
    with EmulatorThread(token=Secret(TOKEN), seed=5) as emulator:
        replay = tl.Replay(workdir, emulator.url, env)
        for i, build in enumerate(builds):
            replay.run(world, [build])
            print(f"build {i + 1}/{len(builds)} at {build.at}", file=sys.stderr)
        expected = tl.expected_outcomes(world, builds)
        received = tl.received_by_conversion(world, emulator.events())
    wrong = tl.differences(expected, received)
    print(json.dumps({"builds": len(builds), "conversions": len(expected), "differences": len(wrong),
                      **tl.settle_figures(expected)}, indent=2))
    for line in wrong[:20]:
        print(line, file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
