"""Helpers for tests that run dbt: the project root, the environment, and dbt invocations.

Tests that exercise the SQL macros compile a small inline query with dbt (so the macros run
exactly as in a build) and execute the compiled SQL in an in-memory DuckDB against cases the
test writes itself. Tests that need the whole project build it into a temporary DuckDB file.
"""

from __future__ import annotations

import fcntl
import hashlib
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
# ... and TikTok's names, which dbt loads as seeds from the sender's package data
PROJECT_FILES = ("dbt_project.yml", "selectors.yml", "models", "macros", "seeds", "tests/generic",
                 "tests/singular", "tests/monitors", "sender/src/tiktok_sender/reference")


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


class InProcessDbt:
    """dbt invoked in this process on one project and one DuckDB file with the same vars each
    time: the project is parsed once and its manifest reused, so an invocation costs its own work,
    not a Python start-up and a parse. Fails the test with the nodes that failed."""

    def __init__(self, project: Path, duckdb_path: Path, variables: str) -> None:
        self.project = project
        self.duckdb_path = duckdb_path
        self.variables = variables
        self._manifest: object = None

    def __call__(self, *args: str) -> None:
        from dbt.cli.main import dbtRunner

        os.environ.update(dbt_env(self.duckdb_path))
        common = ["--project-dir", str(self.project), "--vars", self.variables, "--quiet"]
        try:
            if self._manifest is None:
                parsed = dbtRunner().invoke(["parse", *common])
                if not parsed.success:
                    pytest.fail(f"dbt parse failed: {parsed.exception}")
                self._manifest = parsed.result
            result = dbtRunner(manifest=self._manifest).invoke([*args, *common])  # type: ignore[arg-type]
        finally:
            release_duckdb()
        if not result.success:
            failures = [f"{r.node.unique_id}: {r.status}: {r.message}" for r in getattr(result.result, "results", [])
                        if str(r.status) in ("error", "fail")]
            pytest.fail(f"dbt {' '.join(args)} failed: {result.exception or ''}\n" + "\n".join(failures))


def release_duckdb() -> None:
    """dbt-duckdb keeps its database open in the process between invocations; a test that reads
    the file, or another process, needs it. Close it (dbt opens it again at the next invocation)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


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
        self.targets: dict[str, str] = {}

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
        self._reuse_parse(target, out / "target")
        self.runs[name] = out
        self.targets[name] = target
        return subprocess.Popen(
            [str(self.dbt_for.get(target, VENV_BIN / "dbt")), *args, "--target", target,
             "--vars", json.dumps({"tiktok_as_of": self.as_of, **(variables or {})}),
             "--target-path", str(out / "target"), "--log-path", str(out / "logs"),
             "--project-dir", str(self.project)],
            cwd=self.project, env=self.env(env), stdout=(out / "stdout.txt").open("w"),
            stderr=subprocess.STDOUT, text=True,
        )

    def _reuse_parse(self, target: str, target_path: Path) -> None:
        """Start from the partial-parse file of an earlier run on the same target: dbt checks it
        against the project's files, vars and profile and parses again whatever changed (all of
        it when the vars differ), so a run after the first skips the parse (tens of seconds on
        two busy cores), not any of its work."""
        for name, done in list(self.runs.items()):  # another thread may add a run
            state = done / "target" / "partial_parse.msgpack"
            if self.targets[name] == target and state.exists():
                target_path.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(state, target_path / state.name)
                return

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

    def shared_run(self, name: str, args: list[str], target: str, cache: Path) -> None:
        """Run `dbt ARGS --target TARGET` (a DuckDB target, into `duckdb_path`) once for all
        the Builds of a test session that would run it on the same inputs: the project's files
        with their demo data, the vars, the profile and the event-source ids. The first one runs
        it and keeps its warehouse and output in `cache` (a directory the session's workers
        share); a later one, or one that waited while it ran, takes a copy of the warehouse and
        reads the same output. Inputs that differ in anything run again."""
        key = self._inputs_key(args, target)
        cache.mkdir(parents=True, exist_ok=True)
        kept = cache / key
        with (cache / f"{key}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (kept / "done").exists():
                self.wait({name: self.start(name, args, target)})
                kept.mkdir()
                shutil.copyfile(self.duckdb_path, kept / self.duckdb_path.name)
                (kept / "run").symlink_to(self.runs[name])
                (kept / "done").touch()
                return
        shutil.copyfile(kept / self.duckdb_path.name, self.duckdb_path)
        self.runs[name] = (kept / "run").resolve()
        self.targets[name] = target

    def _inputs_key(self, args: list[str], target: str) -> str:
        env = self.env()
        digest = hashlib.sha256(json.dumps(
            [args, target, self.as_of, {k: v for k, v in env.items() if k.startswith("TIKTOK_")}]).encode())
        digest.update((Path(env["DBT_PROFILES_DIR"]) / "profiles.yml").read_bytes())
        for path in sorted(p for p in self.project.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(self.project)).encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:32]

    def output(self, name: str) -> str:
        return (self.runs[name] / "stdout.txt").read_text()

    def run_results(self, name: str) -> list[dict]:
        return json.loads((self.runs[name] / "target" / "run_results.json").read_text())["results"]

    def manifest(self, name: str) -> dict:
        return json.loads((self.runs[name] / "target" / "manifest.json").read_text())


def session_cache(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory every worker of this test session shares (`Builds.shared_run`)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


def comparable_rows(rows: list[tuple]) -> set[tuple]:
    """Rows of two engines as comparable tuples: numbers as floats rounded to 9 digits (decimal
    vs double), product contents as the sender sends them, other strings, booleans, timestamps
    and nulls as they are."""
    def cell(v: object) -> object:
        if isinstance(v, str) and v.startswith("[{"):
            return contents(v)
        if isinstance(v, bool) or v is None or isinstance(v, str | datetime):
            return v
        return round(float(v), 9)  # type: ignore[arg-type]
    return {tuple(cell(v) for v in row) for row in rows}


def contents(text: str) -> str:
    """An outbox `contents` JSON array as the sender sends it (each engine's JSON functions order
    keys and print numbers their own way); other text as it is."""
    from tiktok_sender.api.payload import ContentsError, parse_contents

    try:
        return json.dumps(parse_contents(text))
    except ContentsError:
        return text


_HEX64 = re.compile(r"[0-9a-f]{64}")


def raw_identifiers(path: Path, source_schema: str = "raw_first_party") -> set[str]:
    """Every raw email, phone, name and zip code of the source customers: as written, trimmed,
    lowercased, phones in E.164 (phonenumbers), names and zip codes also as normalised before
    hashing (no whitespace, lowercased). Values that already were SHA-256 upstream, and fragments
    shorter than 5 characters, are not identifying and are left out."""
    import duckdb
    import phonenumbers

    found: set[str] = set()
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(f"select email, phone, country_code from {source_schema}.customers").fetchall()
        columns = {c for (c,) in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = 'customers'",
            [source_schema]).fetchall()}
        hashed_text = [c for c in ("first_name", "last_name", "zip_code") if c in columns]
        texts = con.execute(f"select {', '.join(hashed_text)} from {source_schema}.customers").fetchall() \
            if hashed_text else []
    for row in texts:
        for value in row:
            if value and value.strip():
                found |= {value, value.strip(), value.strip().lower(), re.sub(r"\s+", "", value).lower()}
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
