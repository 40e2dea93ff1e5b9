"""Helpers for the warehouse tests that run the same checks on DuckDB and PostgreSQL: an outbox of
sender_harness's rows on either engine, its target, and the pending rows read whole."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pg_harness import make_pg_outbox, pg_env
from sender_harness import PROFILES_YML, REPO, Project, base_env, make_outbox

import tiktok_sender
from tiktok_sender.profiles import WarehouseTarget, load_target
from tiktok_sender.shard import Shard
from tiktok_sender.tables.outbox import OUTBOX_SCHEMA
from tiktok_sender.warehouse.base import SqlWarehouse

TERMINAL = ("delivered", "rejected", "expired")
ENGINES = ("duckdb", "postgres")
SRC = str(Path(tiktok_sender.__file__).resolve().parents[1])


@dataclass
class Engine:
    """An outbox (sender_harness.Outbox or pg_harness.PgOutbox) and how to reach it."""

    name: str
    outbox: Any
    root: Path
    cluster: Any = None

    def target(self, cwd: Path | None = None, **environ: str) -> WarehouseTarget:
        """The target of the outbox, loaded in `cwd` (the dbt project, if any; else `root`)."""
        cwd = cwd or self.root
        if self.name == "postgres":  # the repository's own `postgres` target
            (self.root / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
            env = {**self.cluster.env, "TIKTOK_PG_DATABASE": self.outbox.dbname, **environ}
            return load_target(profiles_dir_flag=self.root, target_flag="postgres", environ=env, cwd=cwd)
        (self.root / "profiles.yml").write_text(PROFILES_YML)
        env = {"DBT_DUCKDB_PATH": str(self.outbox.path), **environ}
        return load_target(profiles_dir_flag=self.root, environ=env, cwd=cwd)

    def project(self, api_url: str, cwd: Path | None = None) -> Project:
        """A Project running the `sender` CLI in `cwd` (default: root) with this package's code."""
        if self.name == "postgres":
            (self.root / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
            env = pg_env(self.root, self.cluster, self.outbox.dbname)
        else:
            (self.root / "profiles.yml").write_text(PROFILES_YML)
            env = base_env(self.root, self.outbox.path)
        env["TIKTOK_API_URL"] = api_url
        # the subprocess imports the tiktok_sender under test, wherever it was imported from here
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
        return Project(cwd or self.root, self.outbox, env)

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        return self.outbox.execute(statement)


def make_engine(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty outbox `tiktok.tiktok_events_outbox` on engine `name` (PostgreSQL: in a database
    of its own on pg_fixtures' cluster, dropped afterwards): the body of an `engine` fixture."""
    if name == "duckdb":
        yield Engine("duckdb", make_outbox(tmp_path / "warehouse.duckdb", 0), tmp_path)
        return
    cluster = request.getfixturevalue("postgres_cluster")
    outbox = make_pg_outbox(cluster, 0)
    try:
        yield Engine("postgres", outbox, tmp_path, cluster)
    finally:
        outbox.drop()


def read_all(warehouse: SqlWarehouse, terminal: Sequence[str], limit: int | None,
             chunk_rows: int, shard: Shard | None = None) -> pa.Table:
    """The pending rows `open_pending` hands out, planned as a run plans them."""
    reader = warehouse.open_pending(warehouse.plan_pending(terminal, limit, shard), chunk_rows)
    batches = []
    try:
        while (batch := reader.next()) is not None:
            assert batch.schema == OUTBOX_SCHEMA
            batches.append(batch)
    finally:
        reader.close()
    return pa.Table.from_batches(batches, schema=OUTBOX_SCHEMA)
