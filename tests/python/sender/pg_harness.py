"""Helpers for the sender tests on PostgreSQL: sender_harness's outbox in a database of the session
cluster (tests/python/pg_fixtures.py), and a Project whose profile is the repository's own
`postgres` target (profiles.example.yml), so the sender reads what dbt would."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sender_harness import GENERATORS, REPO, Project, base_env, contract_columns

from tiktok_sender.profiles import WarehouseTarget, load_target

SCHEMA = "tiktok"
PG_PASSWORD = "pg-Kx7SECRETpass-93ad"  # distinctive, so a leak is easy to grep for
PASSWORD_ROLE = "sender_password_user"


def _sha256(expression: str) -> str:
    return f"encode(sha256(convert_to({expression}, 'UTF8')), 'hex')"


# sender_harness.GENERATORS in PostgreSQL: the same values for the same `i`.
PG_GENERATORS: dict[str, str] = {
    **GENERATORS,
    "outbox_seq": "greatest((extract(epoch from clock_timestamp()) * 1000000)::bigint,"
                  " (select coalesce(max(outbox_seq), 0) + 1 from {outbox}))",
    "email_sha256": _sha256("'user' || i || '@example.com'"),
    "phone_sha256": "case when i % 2 = 0 then " + _sha256("'+1415555' || lpad(i::varchar, 4, '0')") + " end",
    "external_id_sha256": _sha256("'cust-' || i"),
    "first_name_sha256": _sha256("'first' || i"),
    "scored_at": "(now() at time zone 'UTC')::timestamp",
    "converted_at": "(to_timestamp(t) at time zone 'UTC')::timestamp",
    "outboxed_at": "(now() at time zone 'UTC')::timestamp",
}


class PgOutbox:
    """`<schema>.tiktok_events_outbox` in a PostgreSQL database, with sender_harness's rows.

    The same interface as sender_harness.Outbox (`execute` takes psycopg2's `%s` parameters), so
    fault_matrix.reconcile works on it unchanged."""

    def __init__(self, cluster: Any, dbname: str, schema: str = SCHEMA) -> None:
        self.cluster = cluster
        self.dbname = dbname
        self.schema = schema
        self.rows = 0

    @contextmanager
    def connect(self) -> Iterator[Any]:
        con = self.cluster.connect(self.dbname)
        try:
            yield con
        finally:
            con.close()

    def create(self) -> None:
        body = ", ".join(f"{name} {dtype}" for name, dtype in contract_columns())
        self.execute(f"create schema if not exists {self.schema}")
        self.execute(f"create table {self.schema}.tiktok_events_outbox ({body})")

    def add(self, n: int, *, start: int = 0, age_s: int = 3600) -> None:
        """Append rows i = start .. start+n-1 with event_time = now - age_s - i."""
        exprs = ", ".join(
            f"cast({PG_GENERATORS.get(name, 'null')} as {dtype}) as {name}"
            for name, dtype in contract_columns()
        ).replace("{outbox}", f"{self.schema}.tiktok_events_outbox")
        self.execute(
            f"insert into {self.schema}.tiktok_events_outbox select {exprs} from ("
            f"select i, extract(epoch from now())::bigint - {age_s} - i as t"
            f" from generate_series({start}::bigint, {start + n - 1}::bigint) as i) as numbered"
        )
        self.rows += n

    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        with self.connect() as con, con.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

    def _dicts(self, sql: str) -> list[dict[str, Any]]:
        with self.connect() as con, con.cursor() as cur:
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def receipts(self, where: str = "true") -> list[dict[str, Any]]:
        return self._dicts(f"select * from {self.schema}.tiktok_delivery_receipts where {where}")

    def runs(self) -> list[dict[str, Any]]:
        return self._dicts(f"select * from {self.schema}.tiktok_delivery_runs order by started_at")

    def all_text(self) -> str:
        """Every value of every table of the database's own schemas, as one string."""
        parts: list[str] = []
        tables = self.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema not in ('pg_catalog', 'information_schema')")
        for schema, table in tables:
            for row in self.execute(f'select * from "{schema}"."{table}"'):
                parts.extend(str(v) for v in row)
        return "\n".join(parts)

    def copy_from(self, other: Any) -> None:
        """Append every outbox row of `other` (a DuckDB sender_harness.Outbox), unchanged."""
        from psycopg2.extras import execute_values

        with other.connect() as duck:
            cursor = duck.execute(f"select * from {other.schema}.tiktok_events_outbox")
            names = ", ".join(d[0] for d in cursor.description)
            rows = cursor.fetchall()
        with self.connect() as con, con.cursor() as cur:
            execute_values(cur, f"insert into {self.schema}.tiktok_events_outbox ({names}) values %s", rows)
        self.rows += len(rows)

    def drop(self) -> None:
        self.cluster.query(f'drop database if exists "{self.dbname}" with (force)', dbname="postgres")


def new_database(cluster: Any, prefix: str = "sender") -> str:
    return cluster.create_database(f"{prefix}_{uuid.uuid4().hex[:10]}")


def make_pg_outbox(cluster: Any, n: int, *, age_s: int = 3600) -> PgOutbox:
    """A new database holding `tiktok.tiktok_events_outbox` with `n` rows."""
    outbox = PgOutbox(cluster, new_database(cluster))
    outbox.create()
    if n:
        outbox.add(n, age_s=age_s)
    return outbox


def pg_env(root: Path, cluster: Any, dbname: str) -> dict[str, str]:
    """sender_harness.base_env for the `postgres` target of profiles.example.yml."""
    env = base_env(root, root / "no.duckdb")
    del env["DBT_DUCKDB_PATH"]
    env.update({k: v for k, v in cluster.env.items() if k != "TIKTOK_PG_CLUSTER_DIR"})
    env.update({"DBT_TARGET": "postgres", "TIKTOK_PG_DATABASE": dbname})
    return env


def pg_project(root: Path, outbox: PgOutbox, api_url: str) -> Project:
    """A working directory with the repository's profiles.yml, sending to `api_url`."""
    (root / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
    env = pg_env(root, outbox.cluster, outbox.dbname)
    env["TIKTOK_API_URL"] = api_url
    return Project(root, outbox, env)  # type: ignore[arg-type]  # PgOutbox has Outbox's interface


def with_password(project: Project) -> Project:
    """The project connecting as a role that must give PG_PASSWORD (scram-sha-256)."""
    cluster = project.outbox.cluster  # type: ignore[attr-defined]
    cluster.create_password_role(PASSWORD_ROLE, PG_PASSWORD)
    env = {**project.env, "TIKTOK_PG_USER": PASSWORD_ROLE, "TIKTOK_PG_PASSWORD": PG_PASSWORD}
    return Project(project.root, project.outbox, env)


def rss_bytes() -> int:
    """The resident set size of this process (Linux)."""
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pg_target(root: Path, cluster: Any, dbname: str, **environ: str) -> WarehouseTarget:
    """The `postgres` target of profiles.example.yml for `dbname` (`environ` overrides)."""
    (root / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
    env = {**cluster.env, "TIKTOK_PG_DATABASE": dbname, **environ}
    return load_target(profiles_dir_flag=root, target_flag="postgres", environ=env, cwd=root)
