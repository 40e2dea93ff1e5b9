"""Helpers for tests that run dbt: the project root, the environment, and dbt invocations.

Tests that exercise the SQL macros compile a small inline query with dbt (so the macros run
exactly as in a build) and execute the compiled SQL in an in-memory DuckDB against cases the
test writes itself. Tests that need the whole project build it into a temporary DuckDB file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
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


# The instant the cross-engine builds pin their demo data and `tiktok_as_of` to, so every engine
# sees the same "now".
DEMO_AS_OF = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None).isoformat(sep=" ")


class Builds:
    """A copy of the project with demo data of its own (for `as_of`), and dbt runs in it as
    subprocesses side by side: each with a target and log directory of its own (no clash with
    other dbt runs), its output kept for the assertions. The engine's part: `target`, the profile
    target a run builds unless told otherwise; `env`, what it adds to dbt's environment;
    `dbt_for`, another dbt executable for a target (one in a virtualenv of its own)."""

    def __init__(self, work: Path, target: str, as_of: str = DEMO_AS_OF, env: dict[str, str] | None = None,
                 dbt_for: dict[str, Path] | None = None) -> None:
        self.work = work
        self.target = target
        self.as_of = as_of
        self.duckdb_path = work / "duckdb" / "warehouse.duckdb"
        self.duckdb_path.parent.mkdir()
        self.project = copy_project(work / "project")
        self.engine_env = env or {}
        self.dbt_for = dbt_for or {}
        self.runs: dict[str, Path] = {}

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**dbt_env(self.duckdb_path), **self.engine_env, **(extra or {})}

    def generate_demo_data(self, scale: str | None = None) -> Path:
        """The demo CSVs for `as_of` (at `scale` of the demo's rows) in the copy's seeds/demo."""
        seeds = self.project / "seeds" / "demo"
        subprocess.run(
            [sys.executable, "scripts/generate_demo_data.py", "--out", str(seeds), "--as-of", self.as_of,
             *(["--scale", scale] if scale else [])],
            cwd=PROJECT_ROOT, env=self.env(), check=True, capture_output=True,
        )
        return seeds

    def start(self, name: str, args: list[str], target: str | None = None, variables: dict | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start `dbt ARGS --target TARGET` (the engine's by default) with `tiktok_as_of` and
        `variables` as vars."""
        target = target or self.target
        out = self.work / name
        out.mkdir(exist_ok=True)
        self.runs[name] = out
        return subprocess.Popen(
            [str(self.dbt_for.get(target, VENV_BIN / "dbt")), *args, "--target", target,
             "--vars", json.dumps({"tiktok_as_of": self.as_of, **(variables or {})}),
             "--target-path", str(out / "target"), "--log-path", str(out / "logs"),
             "--project-dir", str(self.project)],
            cwd=self.project, env=self.env(env), stdout=(out / "stdout.txt").open("w"),
            stderr=subprocess.STDOUT, text=True,
        )

    def wait(self, procs: dict[str, subprocess.Popen[str]], timeout: float = 1200) -> None:
        """Wait for the runs `start` began; fail the test with the output of one that failed or
        did not finish in time."""
        deadline = time.monotonic() + timeout
        for name, proc in procs.items():
            try:
                rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                pytest.fail(f"dbt ({name}) did not finish in {timeout:.0f}s:\n{self.output(name)[-4000:]}")
            if rc != 0:
                pytest.fail(f"dbt ({name}) failed ({rc}):\n{self.output(name)[-6000:]}")

    def output(self, name: str) -> str:
        return (self.runs[name] / "stdout.txt").read_text()

    def run_results(self, name: str) -> list[dict]:
        return json.loads((self.runs[name] / "target" / "run_results.json").read_text())["results"]

    def manifest(self, name: str) -> dict:
        return json.loads((self.runs[name] / "target" / "manifest.json").read_text())


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
