"""Fixtures for the sender tests (helpers live in sender_harness)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytest runs with --import-mode=importlib: make this directory's helper module importable.
sys.path.insert(0, str(Path(__file__).parent))

from sender_harness import PROFILES_YML, TOKEN, Project, base_env, make_outbox  # noqa: E402

from tiktok_emulator import EmulatorThread
from tiktok_sender.settings import Secret


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread(token=Secret(TOKEN), seed=7) as emu:
        yield emu


@pytest.fixture
def project(tmp_path: Path, emulator: EmulatorThread) -> Project:
    """A working directory with profiles.yml, an outbox of 200 events, env to reach the emulator."""
    (tmp_path / "profiles.yml").write_text(PROFILES_YML)
    db = tmp_path / "warehouse.duckdb"
    outbox = make_outbox(db, 200)
    env = base_env(tmp_path, db)
    env["TIKTOK_API_URL"] = emulator.url
    return Project(tmp_path, outbox, env)
