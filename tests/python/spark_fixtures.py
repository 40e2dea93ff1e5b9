"""pytest fixtures for tests that need a real Spark (scripts/spark_server.py).

Use them from a test module with ``pytest_plugins = ["spark_fixtures"]``. ``spark_server`` is
session-scoped: one local Spark with a Spark Connect endpoint on 127.0.0.1, an in-memory catalog
and its tables under a temporary directory, stopped at the end of the session. It is a
``SparkServer``: ``.url`` (``sc://127.0.0.1:PORT``, what SPARK_REMOTE takes), ``.env`` and
``.session()`` (a pyspark Spark Connect client).

Where no Java runtime exists the fixture skips with a plain message, except under ``CI=true``,
where that is a failure: CI must run these tests (``make system-deps`` installs OpenJDK 17).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVER = PROJECT_ROOT / "scripts" / "spark_server.py"
START_TIMEOUT = 240  # seconds: a JVM and Spark on 2 busy cores


def require_java() -> str:
    java = shutil.which("java")
    if java is None:
        message = "no Java runtime: the Spark tests need OpenJDK 17 (apt-get install openjdk-17-jre-headless)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true, so this is a failure, not a skip", pytrace=False)
        pytest.skip(message)
    return java


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SparkServer:
    url: str
    directory: Path
    process: subprocess.Popen[str]

    @property
    def env(self) -> dict[str, str]:
        return {"SPARK_REMOTE": self.url}

    def session(self) -> Any:
        """A new Spark Connect session: it sees the tables as they are now (a session caches the
        files of a table it has read, and dbt replaces a table's files when it rebuilds it)."""
        from pyspark.sql import SparkSession

        return SparkSession.builder.remote(self.url).create()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        try:  # the JVM is the server's child: leave nothing of the group behind
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_server(directory: Path) -> SparkServer:
    require_java()
    port = free_port()
    log = (directory / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--dir", str(directory), "--port", str(port), "--catalog", "in-memory"],
        cwd=directory, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
    )
    server = SparkServer(f"sc://127.0.0.1:{port}", directory, process)
    deadline = time.monotonic() + START_TIMEOUT
    assert process.stdout is not None
    line = ""
    while process.poll() is None and (remaining := deadline - time.monotonic()) > 0:
        if select.select([process.stdout], [], [], remaining)[0]:
            line = process.stdout.readline()
            if line.startswith("ready "):
                return server
    server.stop()
    pytest.fail(f"the Spark server did not start ({line!r}):\n{(directory / 'server.log').read_text()[-4000:]}")


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkServer]:
    server = start_server(tmp_path_factory.mktemp("spark"))
    try:
        yield server
    finally:
        server.stop()
