"""The geo experiment's design and readout on the demo data, built twice at one pinned instant:
with the lift the generator plants in the treatment countries of `store-pltv-vs-bau`, and with
none (`--geo-lift 0`). The readout must recover the planted effect within its interval and
report no effect when none is planted; the cells must be the ones the generator's own copy of
the assignment hash gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from scripts_loader import load_script

from dbt_harness import PROJECT_ROOT, copy_project, run_dbt

AS_OF = "2026-11-25 06:00:00"
SCHEMA = "tiktok"
FINISHED, RUNNING = "store-pltv-vs-bau", "store-pltv-cap"
READOUT = """select status, revenue_treatment, counterfactual_revenue, incremental_revenue,
                    incremental_ci95_low, incremental_ci95_high, lift, lift_ci95_low, lift_ci95_high, readable_from
             from {schema}.experiment_readout where experiment_id = ?"""


def build(work: Path, geo_lift: float) -> Path:
    """The demo project's experiment models built from demo data with `geo_lift` (seeds and
    models, no tests: the suite's other modules test those)."""
    project = copy_project(work / "project")
    subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "generate_demo_data.py"),
         "--out", str(project / "seeds" / "demo"), "--as-of", AS_OF, "--geo-lift", str(geo_lift)],
        check=True, capture_output=True,
    )
    warehouse = work / "warehouse.duckdb"
    variables = json.dumps({"tiktok_as_of": AS_OF})
    run_dbt(["seed", "--vars", variables], warehouse, project=project)
    run_dbt(["run", "--select", "+experiment_readout", "+experiment_design", "--vars", variables], warehouse,
            project=project)
    return warehouse


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("geo-planted"), 1.0)


@pytest.fixture(scope="module")
def unplanted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("geo-unplanted"), 0.0)


def readout(path: Path, experiment: str = FINISHED) -> dict[str, object]:
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(READOUT.format(schema=SCHEMA), [experiment])
        names = [d[0] for d in cursor.description]
        (row,) = cursor.fetchall()
    return dict(zip(names, row, strict=True))


def test_the_readout_recovers_the_planted_lift_within_its_interval(planted: Path, unplanted: Path) -> None:
    with_lift, without = readout(planted), readout(unplanted)
    assert with_lift["status"] == without["status"] == "readable"
    # the truth: what the planted lift added to the treatment countries' revenue at maturity
    planted_effect = with_lift["revenue_treatment"] - without["revenue_treatment"]
    assert planted_effect > 1000
    # the control countries and the pre-period are untouched, so the counterfactual is the same
    assert with_lift["counterfactual_revenue"] == pytest.approx(without["counterfactual_revenue"])
    assert with_lift["incremental_ci95_low"] <= planted_effect <= with_lift["incremental_ci95_high"]
    assert with_lift["incremental_ci95_low"] > 0  # detected, not only compatible
    assert with_lift["lift_ci95_low"] > 0


def test_the_readout_reports_no_effect_when_none_is_planted(unplanted: Path) -> None:
    result = readout(unplanted)
    assert result["incremental_ci95_low"] < 0 < result["incremental_ci95_high"]
    assert result["lift_ci95_low"] < 0 < result["lift_ci95_high"]


def test_a_running_experiment_says_when_it_can_be_read(planted: Path) -> None:
    result = readout(planted, RUNNING)
    assert result["status"] == "immature" and result["incremental_revenue"] is None
    with duckdb.connect(str(planted), read_only=True) as con:
        ended, maturity = con.execute(
            f"select ended_at, maturity_days from {SCHEMA}.stg_first_party__experiments where experiment_id = ?",
            [RUNNING]).fetchone()
    assert (result["readable_from"] - ended).days == maturity == 90


def test_the_design_is_balanced_and_says_what_it_can_detect(planted: Path) -> None:
    with duckdb.connect(str(planted), read_only=True) as con:
        rows = con.execute(
            f"""select experiment_id, units_treatment, units_control, is_balanced, mde_lift, mde_roas, status
                from {SCHEMA}.experiment_design order by experiment_id""").fetchall()
    assert [r[0] for r in rows] == [RUNNING, FINISHED]
    for _, treated, control, balanced, mde_lift, mde_roas, _ in rows:
        assert (treated, control, balanced) == (8, 8, True)
        assert 0.1 < mde_lift < 2 and mde_roas > 0
    assert {r[0]: r[6] for r in rows} == {RUNNING: "running", FINISHED: "readable"}


def test_the_cells_are_the_hash_the_generator_plants_by(planted: Path) -> None:
    gen = load_script("generate_demo_data")
    with duckdb.connect(str(planted), read_only=True) as con:
        cells = con.execute(
            f"""select cells.experiment_id, experiments.salt, cells.geo_unit, cells.experiment_cell
                from {SCHEMA}.int_experiment_geo_cells as cells
                inner join {SCHEMA}.stg_first_party__experiments as experiments using (experiment_id)""").fetchall()
    assert {unit for _, _, unit, _ in cells} >= set(gen.COUNTRY_WEIGHTS)
    for experiment, salt, unit, cell in cells:
        assert gen.geo_cell(salt, experiment, unit) == cell, (experiment, unit)
