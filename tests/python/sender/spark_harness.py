"""Helpers for the sender tests on Spark: sender_harness's outbox rows copied into the session's
local Spark (tests/python/spark_fixtures.py, Spark Connect), and a Project whose profile is the
repository's own `spark` target (profiles.example.yml), so the sender reads what dbt would.

The server is shared by the session, so the schema `tiktok` is dropped before and after each
outbox: the tests of one worker run one after the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sender_harness import REPO, Outbox, Project, base_env, make_outbox

SCHEMA = "tiktok"


class SparkOutbox:
    """`tiktok.tiktok_events_outbox` on the Spark server, with sender_harness's rows; the same
    interface as sender_harness.Outbox (`execute` takes `?` parameters), so fault_matrix works
    on it unchanged."""

    def __init__(self, server: Any, schema: str = SCHEMA) -> None:
        self.server = server
        self.schema = schema
        self.rows = 0

    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        session = self.server.session()
        try:
            session.conf.set("spark.sql.ansi.doubleQuotedIdentifiers", "true")
            return [tuple(row) for row in session.sql(sql, args=list(params) if params else None).collect()]
        finally:
            session.stop()

    def _dicts(self, sql: str) -> list[dict[str, Any]]:
        session = self.server.session()
        try:
            frame = session.sql(sql)
            return [row.asDict() for row in frame.collect()]
        finally:
            session.stop()

    def receipts(self, where: str = "true") -> list[dict[str, Any]]:
        return self._dicts(f"select * from {self.schema}.tiktok_delivery_receipts where {where}")

    def runs(self) -> list[dict[str, Any]]:
        return self._dicts(f"select * from {self.schema}.tiktok_delivery_runs order by started_at")

    def copy_from(self, other: Outbox) -> None:
        """The outbox rows of `other` (a DuckDB sender_harness.Outbox), as a parquet table."""
        with other.connect() as duck:
            table = duck.execute(f"select * from {other.schema}.tiktok_events_outbox").fetch_arrow_table()
        session = self.server.session()
        try:
            session.sql(f"create schema if not exists {self.schema}")
            session.createDataFrame(table).write.format("parquet").mode("append").saveAsTable(
                f"{self.schema}.tiktok_events_outbox")
        finally:
            session.stop()
        self.rows += table.num_rows

    def drop(self) -> None:
        self.execute(f"drop schema if exists {self.schema} cascade")


def make_spark_outbox(server: Any, workdir: Path, n: int, *, age_s: int = 3600) -> SparkOutbox:
    """A fresh `tiktok` schema holding the outbox with `n` rows (sender_harness's, via DuckDB)."""
    outbox = SparkOutbox(server)
    outbox.drop()
    workdir.mkdir(parents=True, exist_ok=True)
    outbox.copy_from(make_outbox(workdir / "rows.duckdb", n, age_s=age_s))
    return outbox


def spark_project(root: Path, outbox: SparkOutbox, api_url: str) -> Project:
    """A working directory with the repository's profiles.yml, target `spark`, sending to `api_url`."""
    (root / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
    env = base_env(root, root / "no.duckdb")
    del env["DBT_DUCKDB_PATH"]
    env.update({"DBT_TARGET": "spark", "SPARK_REMOTE": outbox.server.url, "TIKTOK_API_URL": api_url})
    return Project(root, outbox, env)  # type: ignore[arg-type]  # SparkOutbox has Outbox's interface
