"""Helpers for tests that run dbt: the project root, the environment, and dbt invocations.

Tests that exercise the SQL macros compile a small inline query with dbt (so the macros run
exactly as in a build) and execute the compiled SQL in an in-memory DuckDB against cases the
test writes itself. Tests that need the whole project build it into a temporary DuckDB file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# Event-source ids the demo build needs; real deployments set these in their environment. All
# four are set, offline and CRM to empty, so a test sees the same ids whatever the shell (or
# `make`) exported.
DEMO_ENV = {
    "TIKTOK_PIXEL_CODE": "CDEMOPIXEL00000000001",
    "TIKTOK_APP_ID": "7000000000000000001",
    "TIKTOK_OFFLINE_EVENT_SET_ID": "",
    "TIKTOK_CRM_EVENT_SET_ID": "",
}


# What `dbt` needs of the project, for tests that build a copy of it with demo data of their own
# (the project's seeds/demo is left to the tests that write it, see conftest.DEMO_SEED_WRITERS).
PROJECT_FILES = ("dbt_project.yml", "selectors.yml", "models", "macros", "seeds", "tests/generic",
                 "tests/singular", "tests/monitors")


def copy_project(dest: Path) -> Path:
    """A copy of the dbt project in `dest` (created); returns it."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        if (PROJECT_ROOT / name).is_dir():
            shutil.copytree(PROJECT_ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(PROJECT_ROOT / name, dest / name)
    return dest


def dbt_env(duckdb_path: Path) -> dict[str, str]:
    env = {**os.environ, **DEMO_ENV}
    env["DBT_DUCKDB_PATH"] = str(duckdb_path)
    env["DBT_PROFILES_DIR"] = str(PROJECT_ROOT)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def run_dbt(args: list[str], duckdb_path: Path, extra_env: dict[str, str] | None = None,
            project: Path = PROJECT_ROOT) -> str:
    """Run the dbt CLI of this virtualenv in the project (or in a copy of it, `copy_project`);
    fail the test with dbt's output."""
    env = dbt_env(duckdb_path)
    env.update(extra_env or {})
    proc = subprocess.run(
        [str(VENV_BIN / "dbt"), *args, "--project-dir", str(project)],
        cwd=project,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"dbt {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
        )
    return proc.stdout


def build_demo_warehouse(path: Path) -> Path:
    """Generate fresh demo data and `dbt build` it (seeds included) into the DuckDB file at path."""
    subprocess.run(
        [sys.executable, "scripts/generate_demo_data.py", "--out", "seeds/demo"],
        cwd=PROJECT_ROOT, env=dbt_env(path), check=True, capture_output=True,
    )
    run_dbt(["build"], path)
    return path


def comparable_rows(rows: list[tuple]) -> set[tuple]:
    """Rows of two engines as comparable tuples: numbers as floats rounded to 9 digits (decimal
    vs double), strings, booleans, timestamps and nulls as they are."""
    def cell(v: object) -> object:
        if isinstance(v, bool) or v is None or isinstance(v, str | datetime):
            return v
        return round(float(v), 9)  # type: ignore[arg-type]
    return {tuple(cell(v) for v in row) for row in rows}


_HEX64 = re.compile(r"[0-9a-f]{64}")


def raw_identifiers(path: Path, source_schema: str = "raw_first_party") -> set[str]:
    """Every raw email and phone of the source customers: as written, trimmed, lowercased, and in
    E.164 (phonenumbers). Values that already were SHA-256 upstream, and fragments shorter than 5
    characters, are not identifying and are left out."""
    import duckdb
    import phonenumbers

    found: set[str] = set()
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(f"select email, phone, country_code from {source_schema}.customers").fetchall()
    for email, phone, country in rows:
        for value in (email, phone):
            if value and value.strip():
                found |= {value, value.strip(), value.strip().lower()}
        if phone:
            try:
                number = phonenumbers.parse(phone, (country or "").strip().upper() or None)
                found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
            except phonenumbers.NumberParseException:
                pass
    return {v for v in found if not _HEX64.fullmatch(v.lower()) and len(v) >= 5}
