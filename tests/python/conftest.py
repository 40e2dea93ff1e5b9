"""Shared fixtures for the dbt-side tests (helpers live in dbt_harness)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from dbt_harness import PROJECT_ROOT, dbt_env


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


# -- running the suite on several workers (`make test`: pytest -n 2, pytest-xdist) --------------

# Modules that write the demo CSVs into the project's own seeds/demo and build from them: they
# share that directory, so they run one after the other, on one worker. (Tests that need demo
# data of their own build a copy of the project: `dbt_harness.copy_project`.)
DEMO_SEED_WRITERS = frozenset({
    "test_audit_models.py", "test_messy_data.py", "test_outbox_build.py", "test_audit_report.py",
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


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Hand out whole modules (their tests share module fixtures), the seeds/demo writers as one
    unit, and the Spark modules as one."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            name = module.rsplit("/", 1)[-1]
            if name in DEMO_SEED_WRITERS:
                return "demo_seeds"
            return "spark" if name in SPARK_MODULES else module

    return ModuleScheduling(config, log)
