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
