"""Run the sender's fault matrix and print one line per scenario.

Each scenario runs the real `sender push` against the emulator's fault injection on 127.0.0.1
(re-running it as an operator would), then reconciles the emulator, the receipts and the outbox
event by event. The scenarios and the reconciliation live in tests/python/sender/fault_matrix.py,
which the test suite runs too (tests/python/sender/test_fault_matrix.py).

    .venv/bin/python scripts/fault_matrix.py [SCENARIO ...]

Exits 1 when any scenario loses an event or breaks an invariant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python" / "sender"))

import fault_matrix  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [s.name for s in fault_matrix.SCENARIOS]
    parser.add_argument("scenarios", nargs="*", help=f"scenarios to run (default: all): {', '.join(names)}")
    args = parser.parse_args()
    unknown = sorted(set(args.scenarios) - set(names))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    rows = []
    for scenario in fault_matrix.SCENARIOS:
        if args.scenarios and scenario.name not in args.scenarios:
            continue
        print(f"running {scenario.name}: {scenario.description}", file=sys.stderr, flush=True)
        rows.extend(fault_matrix.run_all([scenario.name]))
    print(fault_matrix.table(rows))
    bad = [r for r in rows if not r.ok]
    for row in bad:
        print(f"{row.scenario}: " + "; ".join(row.problems[:5]), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
