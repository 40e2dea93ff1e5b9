"""Helpers for the sender tests on emulated Snowflake: sender_harness's outbox rows copied into a
database of the session's fakesnow server (tests/python/snowflake_fixtures.py), and a Project
whose profile is the repository's own `snowflake_emulated` target (profiles.example.yml), so the
sender reads what dbt would.

The tests reach the emulator as the sender does, through the ADBC Snowflake driver; each outbox
lives in a database of its own, so tests never see each other's tables."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import adbc_driver_snowflake.dbapi
import pyarrow as pa
from sender_harness import REPO, Outbox, Project, base_env, contract_columns, make_outbox

SCHEMA = "tiktok"
_DATABASES = itertools.count(1)


def connect(port: int, database: str) -> Any:
    """An autocommit ADBC connection to the emulator on `port`, in `database` (created if new)."""
    con = adbc_driver_snowflake.dbapi.connect(db_kwargs={
        "adbc.snowflake.sql.account": "fakesnow", "username": "fake", "password": "snow",
        "adbc.snowflake.sql.uri.host": "127.0.0.1", "adbc.snowflake.sql.uri.port": str(port),
        "adbc.snowflake.sql.uri.protocol": "http", "adbc.snowflake.sql.db": database,
        "adbc.snowflake.sql.client_option.use_high_precision": "false",
    }, autocommit=True)
    with con.cursor() as cur:
        cur.execute(f"create database if not exists {database}")
        cur.execute(f"use database {database}")
    return con


class SnowflakeOutbox:
    """`tiktok.tiktok_events_outbox` in a database of its own on the emulator, with
    sender_harness's rows; the same interface as sender_harness.Outbox (`execute` takes `?`
    parameters), so fault_matrix works on it unchanged. Rows come back with lower-case keys."""

    def __init__(self, port: int, database: str | None = None, schema: str = SCHEMA) -> None:
        self.port = port
        self.database = database or f"SENDER_{next(_DATABASES)}"
        self.schema = schema
        self.rows = 0
        self._con = connect(port, self.database)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._con.cursor() as cur:
            cur.execute(sql, tuple(params) if params else None)
            if not cur.description:
                return []
            return [tuple(row.values()) for row in cur.fetch_arrow_table().to_pylist()]

    def _dicts(self, sql: str) -> list[dict[str, Any]]:
        with self._con.cursor() as cur:
            cur.execute(sql)
            return [{k.lower(): v for k, v in row.items()} for row in cur.fetch_arrow_table().to_pylist()]

    def receipts(self, where: str = "true") -> list[dict[str, Any]]:
        return self._dicts(f"select * from {self.schema}.tiktok_delivery_receipts where {where}")

    def runs(self) -> list[dict[str, Any]]:
        return self._dicts(f"select * from {self.schema}.tiktok_delivery_runs order by started_at")

    def copy_from(self, other: Outbox) -> None:
        """The outbox rows of `other` (a DuckDB sender_harness.Outbox), appended by the driver's
        bulk ingestion, into a table of the contract's Snowflake types."""
        with other.connect() as duck:
            table = duck.execute(f"select * from {other.schema}.tiktok_events_outbox").fetch_arrow_table()
        body = ", ".join(f"{name} {dtype}" for name, dtype in contract_columns("snowflake"))
        self.execute(f"create schema if not exists {self.schema}")
        self.execute(f"create table if not exists {self.schema}.tiktok_events_outbox ({body})")
        with self._con.cursor() as cur:
            cur.execute(f"use schema {self.database}.{self.schema}")
            cur.adbc_statement.set_options(**{
                "adbc.snowflake.statement.ingest_upload_concurrency": "1",
                "adbc.snowflake.statement.ingest_copy_concurrency": "0"})
            cur.adbc_ingest("TIKTOK_EVENTS_OUTBOX", pa.Table.from_batches(
                table.to_batches(), table.schema.remove_metadata()), mode="append")
        self.rows += table.num_rows

    def close(self) -> None:
        self._con.close()


def make_snowflake_outbox(port: int, workdir: Path, n: int, *, age_s: int = 3600) -> SnowflakeOutbox:
    """A new database holding `tiktok.tiktok_events_outbox` with `n` rows (sender_harness's, via
    DuckDB)."""
    outbox = SnowflakeOutbox(port)
    workdir.mkdir(parents=True, exist_ok=True)
    outbox.copy_from(make_outbox(workdir / "rows.duckdb", n, age_s=age_s))
    return outbox


def snowflake_project(root: Path, outbox: SnowflakeOutbox, api_url: str) -> Project:
    """A working directory with the repository's profiles.yml, target `snowflake_emulated` in the
    outbox's database, sending to `api_url`."""
    (root / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
    env = base_env(root, root / "no.duckdb")
    del env["DBT_DUCKDB_PATH"]
    env.update({"DBT_TARGET": "snowflake_emulated", "FAKESNOW_PORT": str(outbox.port),
                "FAKESNOW_DATABASE": outbox.database, "TIKTOK_API_URL": api_url})
    return Project(root, outbox, env)  # type: ignore[arg-type]  # SnowflakeOutbox has Outbox's interface
