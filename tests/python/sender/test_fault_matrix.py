"""The fault matrix (fault_matrix.py): every scenario loses nothing and reconciles exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_matrix import SCENARIOS, Scenario, run_scenario, table


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fault_scenario_loses_nothing(scenario: Scenario, tmp_path: Path) -> None:
    row = run_scenario(scenario, tmp_path)
    assert row.problems == [], table([row]) + "\n" + "\n".join(row.problems)
    assert row.lost == 0 and row.misdelivered == 0 and row.failed == scenario.failed
    assert row.delivered + row.rejected + row.failed == row.events
