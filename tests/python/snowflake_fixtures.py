"""pytest fixtures for tests on emulated Snowflake (scripts/snowflake_emulator.py, fakesnow).

Use them from a test module with ``pytest_plugins = ["snowflake_fixtures"]``. ``snowflake_emulator``
is session-scoped: one fakesnow server on a free port of 127.0.0.1, its databases in memory,
stopped at the end of the session; a test keeps to a database of its own. ``start_emulator``
starts one for a module that wants its own.

fakesnow runs from .venv-snowflake (``make setup-snowflake``; it pins a DuckDB of its own). Without
that virtualenv the fixture says so and skips, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SNOWFLAKE_VENV = PROJECT_ROOT / ".venv-snowflake"
SNOWFLAKE_BIN = SNOWFLAKE_VENV / "bin"
EMULATOR = PROJECT_ROOT / "scripts" / "snowflake_emulator.py"
START_TIMEOUT = 60  # seconds


def require_snowflake_venv() -> Path:
    """.venv-snowflake's bin directory; skips (fails under CI=true) when it is not installed."""
    if not ((SNOWFLAKE_VENV / ".installed").exists() and (SNOWFLAKE_BIN / "dbt").exists()):
        message = (f"{SNOWFLAKE_VENV.name} not found: the emulated Snowflake tests need dbt-snowflake and "
                   "fakesnow in a virtualenv of their own (make setup-snowflake)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true, so this is a failure, not a skip", pytrace=False)
        pytest.skip(message)
    return SNOWFLAKE_BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Emulator:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return {"FAKESNOW_PORT": str(self.port)}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def start_emulator(directory: Path) -> Emulator:
    """fakesnow on a free port of 127.0.0.1, its log in `directory`; fails the test when it does
    not come up within START_TIMEOUT seconds."""
    bin_dir = require_snowflake_venv()
    log = directory / "emulator.log"
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen([str(bin_dir / "python"), str(EMULATOR), "--port", str(port)],
                                   cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
    running = Emulator(port, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while b"ready http://" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            pytest.fail(f"the Snowflake emulator did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return running


@pytest.fixture(scope="session")
def snowflake_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    running = start_emulator(tmp_path_factory.mktemp("fakesnow"))
    yield running
    running.stop()
