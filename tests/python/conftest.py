"""Shared fixtures for the dbt-side tests (helpers live in dbt_harness)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dbt_harness import PROJECT_ROOT, build_demo_warehouse, dbt_env


@pytest.fixture(scope="session")
def compile_inline(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """Compile an inline query with the project's macros and return the SQL text."""
    from dbt.cli.main import dbtRunner

    scratch = tmp_path_factory.mktemp("compile")
    cache: dict[str, str] = {}

    def compile_sql(inline: str) -> str:
        if inline not in cache:
            os.environ.update(dbt_env(scratch / "compile.duckdb"))
            result = dbtRunner().invoke(
                [
                    "compile", "--inline", inline, "--quiet",
                    "--project-dir", str(PROJECT_ROOT),
                    "--profiles-dir", str(PROJECT_ROOT),
                    "--target-path", str(scratch / "target"),
                ]
            )
            if not result.success:
                pytest.fail(f"dbt could not compile {inline!r}: {result.exception}")
            cache[inline] = result.result.results[0].node.compiled_code
        return cache[inline]

    return compile_sql


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fresh demo data in seeds/demo and `dbt build` of it, once a session: for the seeds/demo
    writers (DEMO_SEED_WRITERS, one worker) that start from that build. The CSVs are kept beside
    it. Take a copy of it: `demo_warehouse`."""
    build = tmp_path_factory.mktemp("demo-build")
    build_demo_warehouse(build / "warehouse.duckdb")
    shutil.copytree(PROJECT_ROOT / "seeds" / "demo", build / "seeds")
    return build / "warehouse.duckdb"


@pytest.fixture(scope="module")
def demo_warehouse(demo_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A module's own copy of the demo build (DuckDB views name their catalog after the file, so
    the name is kept), with the CSVs it was built from back in seeds/demo: another writer may
    have generated them since, for a later hour, and a test that builds again reads them."""
    shutil.copytree(demo_build.parent / "seeds", PROJECT_ROOT / "seeds" / "demo", dirs_exist_ok=True)
    copy = tmp_path_factory.mktemp("demo-warehouse") / demo_build.name
    shutil.copyfile(demo_build, copy)
    return copy


# -- running the suite on several workers (`make test`: pytest -n 2, pytest-xdist) --------------

# Modules that write the demo CSVs into the project's own seeds/demo and build from them: they
# share that directory, so they run one after the other, on one worker. (Tests that need demo
# data of their own build a copy of the project: `dbt_harness.copy_project`.)
DEMO_SEED_WRITERS = frozenset({
    "test_audit_models.py", "test_messy_data.py", "test_outbox_build.py", "test_audit_report.py",
    "test_erasure.py",
})

# Modules that run on the session's local Spark (spark_fixtures): on one worker, so one Spark
# server (a JVM of 2 GB) serves them all, one module after the other.
SPARK_MODULES = frozenset({"test_spark_build.py", "test_spark_push.py"})

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER:
    # dbt writes its manifest, partial-parse cache, compiled SQL and logs under the project: each
    # worker gets directories of its own
    os.environ.setdefault("DBT_TARGET_PATH", str(PROJECT_ROOT / "target" / f"pytest-{_WORKER}"))
    os.environ.setdefault("DBT_LOG_PATH", str(PROJECT_ROOT / "logs" / f"pytest-{_WORKER}"))


# About how long each unit takes (seconds, timed per module in a `make test-python` on two busy
# cores; what matters is their order): a unit is handed out longest first, so the long ones run
# side by side from the start instead of one of them running alone at the end while the other
# worker idles. Units not named here are short and follow in xdist's order (most tests first).
UNIT_SECONDS = {
    "spark": 900, "demo_seeds": 560, "test_timeline.py": 410, "test_snowflake_emulated.py": 420,
    "test_postgres_build.py": 310, "test_postgres_push.py": 205, "test_snowflake_push.py": 100, "test_push_e2e.py": 135,
    "test_fault_matrix.py": 130, "test_postgres_dbt_e2e.py": 120, "test_cli_errors.py": 110,
    "test_warehouse_relations.py": 105, "test_normalisation_properties.py": 95, "test_security.py": 75,
    "test_identities_incremental.py": 70, "test_crash_and_concurrency.py": 65, "test_cross_db_rendering.py": 60,
    "test_pending_window.py": 150, "test_demo_replay.py": 110,
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Hand out whole modules (their tests share module fixtures), the seeds/demo writers as one
    unit, and the Spark modules as one; the longest unit waiting first."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            name = module.rsplit("/", 1)[-1]
            if name in DEMO_SEED_WRITERS:
                return "demo_seeds"
            return "spark" if name in SPARK_MODULES else module

        def _assign_work_unit(self, node: object) -> None:
            # xdist hands out the unit at the head of its queue: put the longest there (max()
            # keeps the first of equals, so the rest keep xdist's order)
            longest = max(self.workqueue, key=lambda scope: UNIT_SECONDS.get(scope.rsplit("/", 1)[-1], 0))
            self.workqueue.move_to_end(longest, last=False)
            super()._assign_work_unit(node)

    return ModuleScheduling(config, log)
