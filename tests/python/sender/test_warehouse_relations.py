"""Where the sender reads and writes: where dbt has the tables. From the manifest `dbt parse` writes
(here a real one, of this project with `tiktok_delivery_schema` set), else from the project var,
else the target's schema; a manifest that cannot be used stops the run with one line. On DuckDB
and PostgreSQL the receipts and runs land in the schema dbt reads them from, and PostgreSQL's
lease follows the delivery tables' schema."""

from __future__ import annotations

import copy
import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from warehouse_testkit import ENGINES, TERMINAL, Engine, make_engine

from dbt_harness import VENV_BIN, copy_project
from tiktok_emulator import EmulatorThread
from tiktok_sender.errors import ConfigError, WarehouseBusyError, WarehouseError
from tiktok_sender.relations import Relation
from tiktok_sender.tables.receipts import Outcome, ReceiptFactory
from tiktok_sender.warehouse import open_warehouse
from tiktok_sender.warehouse.base import SqlWarehouse

pytest_plugins = ["pg_fixtures"]

DELIVERY = "delivery"
PROJECT_YML = "name: tiktok_outbox\nversion: '0.1.0'\nconfig-version: 2\nprofile: tiktok_outbox\n"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request.param, request, tmp_path)


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """engine -> the manifest of this project parsed by dbt for that engine's target, with
    `tiktok_delivery_schema: delivery` (each relation's database is set per test)."""
    root = tmp_path_factory.mktemp("parse")
    project = copy_project(root / "project")
    (root / "profiles.yml").write_text((Path(__file__).resolve().parents[3] / "profiles.example.yml").read_text())
    manifests = {}
    for name in ENGINES:
        out = root / f"target-{name}"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "DBT_DUCKDB_PATH": str(root / "warehouse.duckdb"),
               "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        proc = subprocess.run(
            [str(VENV_BIN / "dbt"), "parse", "--target", name, "--project-dir", str(project),
             "--profiles-dir", str(root), "--target-path", str(out), "--log-path", str(root / "logs"),
             "--vars", json.dumps({"tiktok_delivery_schema": DELIVERY, "tiktok_load_demo_data": False})],
            cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:]
        manifests[name] = orjson.loads((out / "manifest.json").read_bytes())
    return manifests


def dbt_project(engine: Engine, manifest: dict[str, Any] | bytes | None, *, database: str | None = None,
                outbox_schema: str | None = None, project_yml: str = PROJECT_YML) -> Path:
    """A dbt project directory with `manifest` as target/manifest.json, its relations placed in
    `database` (default: the engine's) and the outbox in `outbox_schema`, if given."""
    project = engine.root / "project"
    (project / "target").mkdir(parents=True, exist_ok=True)
    (project / "dbt_project.yml").write_text(project_yml)
    if isinstance(manifest, dict):
        manifest = copy.deepcopy(manifest)
        database = database or ("warehouse" if engine.name == "duckdb" else engine.outbox.dbname)
        for node in [*manifest["nodes"].values(), *manifest["sources"].values()]:
            node["database"] = database
            if outbox_schema and node.get("name") == "tiktok_events_outbox":
                node["schema"] = outbox_schema
        manifest = orjson.dumps(manifest)
    if manifest is not None:
        (project / "target" / "manifest.json").write_bytes(manifest)
    return project


def receipts_table(warehouse: SqlWarehouse, n: int) -> Any:
    _, keys = warehouse.query(f"select event_source_id, event, event_id from {warehouse.outbox} limit {n}")
    table = ReceiptFactory("run-1", None).build(
        event_source="web", event_source_id="P", event_ids=[k[2] for k in keys], events=[k[1] for k in keys],
        event_times=[1] * n, cells=[None] * n, payload_sha256=[None] * n, statuses="delivered", attempt=1,
        outcome=Outcome())
    index = table.schema.get_field_index("event_source_id")
    return table.set_column(index, "event_source_id", pa.array([k[0] for k in keys], pa.string()))


def tables(engine: Engine, schema: str) -> set[str]:
    rows = engine.sql(f"select table_name from information_schema.tables where table_schema = '{schema}'")
    return {r[0] for r in rows}


def test_receipts_and_runs_land_where_the_manifest_says(
    engine: Engine, parsed: dict[str, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    engine.outbox.add(30)
    project = dbt_project(engine, parsed[engine.name])
    target = engine.target(cwd=project)
    assert target.project_dir == project and target.manifest_path == project / "target" / "manifest.json"
    with caplog.at_level(logging.INFO, logger="tiktok_sender"):
        warehouse = open_warehouse(target)
    try:
        relations = warehouse.relations
        assert relations.outbox == Relation("tiktok", "tiktok_events_outbox")
        assert relations.receipts == Relation(DELIVERY, "tiktok_delivery_receipts")
        assert relations.runs == Relation(DELIVERY, "tiktok_delivery_runs")
        assert relations.origin == f"dbt's manifest {target.manifest_path}"
        assert f"receipts {DELIVERY}.tiktok_delivery_receipts" in caplog.text and "from dbt's manifest" in caplog.text
        warehouse.check_outbox()
        warehouse.ensure_delivery_tables()
        warehouse.append_receipts(receipts_table(warehouse, 10))
        assert warehouse.count_pending(warehouse.plan_pending(TERMINAL, None)) == 20
        assert warehouse.status().delivered == 10
    finally:
        warehouse.close()
    assert {"tiktok_delivery_receipts", "tiktok_delivery_runs"} <= tables(engine, DELIVERY)
    assert "tiktok_delivery_receipts" not in tables(engine, "tiktok")


def test_a_push_in_the_project_writes_where_dbt_reads(
    engine: Engine, parsed: dict[str, dict[str, Any]], emulator: EmulatorThread
) -> None:
    engine.outbox.add(25)
    project = dbt_project(engine, parsed[engine.name])
    result = engine.project(emulator.url, cwd=project).sender("push", "--json")
    assert result.returncode == 0, result.stderr
    assert f"receipts {DELIVERY}.tiktok_delivery_receipts" in result.stderr
    assert engine.sql(f"select count(*) from {DELIVERY}.tiktok_delivery_receipts") == [(25,)]
    assert engine.sql(f"select outcome from {DELIVERY}.tiktok_delivery_runs") == [("success",)]
    again = engine.project(emulator.url, cwd=project).sender("push", "--json")
    assert again.returncode == 0 and again.json()["pending"] == 0


def test_the_outbox_is_read_from_the_schema_dbt_built_it_in(engine: Engine, parsed: dict[str, dict[str, Any]]) -> None:
    engine.outbox.add(12)
    engine.sql("create schema marts")
    engine.sql("create table marts.tiktok_events_outbox as select * from tiktok.tiktok_events_outbox limit 5")
    warehouse = open_warehouse(engine.target(cwd=dbt_project(engine, parsed[engine.name], outbox_schema="marts")))
    try:
        assert str(warehouse.relations.outbox) == "marts.tiktok_events_outbox"
        assert warehouse.count_pending(warehouse.plan_pending(TERMINAL, None)) == 5
    finally:
        warehouse.close()


def test_a_manifest_of_another_database_or_adapter_is_refused(
    engine: Engine, parsed: dict[str, dict[str, Any]]
) -> None:
    other = "duckdb" if engine.name == "postgres" else "postgres"
    for manifest, database, needle in [
        (parsed[engine.name], "elsewhere", "in database elsewhere, but the sender is connected to database"),
        (parsed[other], None, f"was written for a {other} target, not for the {engine.name} target"),
    ]:
        target = engine.target(cwd=dbt_project(engine, manifest, database=database))
        with pytest.raises(ConfigError) as caught:
            open_warehouse(target).close()
        text = str(caught.value)
        assert needle in text and "run `dbt parse`" in text and "\n" not in text, text


@pytest.mark.parametrize(("content", "needle"), [
    (b"{not json", "cannot read dbt's manifest"),
    (b"[]", "is not a dbt manifest"),
    (b'{"metadata": {"adapter_type": "duckdb"}, "nodes": {}, "sources": {}}',
     "has no model tiktok_events_outbox"),
])
def test_a_malformed_or_stale_manifest_is_one_line(tmp_path: Path, content: bytes, needle: str,
                                                    request: pytest.FixtureRequest) -> None:
    engine = next(make_engine("duckdb", request, tmp_path))
    target = engine.target(cwd=dbt_project(engine, content))
    with pytest.raises(ConfigError) as caught:
        open_warehouse(target)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_manifest_without_the_delivery_sources_is_stale(tmp_path: Path, parsed: dict[str, dict[str, Any]],
                                                          request: pytest.FixtureRequest) -> None:
    engine = next(make_engine("duckdb", request, tmp_path))
    stale = copy.deepcopy(parsed["duckdb"])
    stale["sources"] = {k: v for k, v in stale["sources"].items() if "tiktok_delivery_runs" not in k}
    with pytest.raises(ConfigError, match="has no source tiktok_delivery.tiktok_delivery_runs"):
        open_warehouse(engine.target(cwd=dbt_project(engine, stale)))
    bad = copy.deepcopy(parsed["duckdb"])
    for node in bad["sources"].values():
        node["schema"] = 'x"; drop table y; --'
    with pytest.raises(ConfigError, match="invalid schema or table name"):
        open_warehouse(engine.target(cwd=dbt_project(engine, bad)))


def test_dbt_target_path_says_where_the_manifest_is(engine: Engine, parsed: dict[str, dict[str, Any]]) -> None:
    engine.outbox.add(3)
    project = dbt_project(engine, parsed[engine.name])
    (project / "target" / "manifest.json").rename(project / "elsewhere.json")
    (project / "custom").mkdir()
    (project / "elsewhere.json").rename(project / "custom" / "manifest.json")
    target = engine.target(cwd=project, DBT_TARGET_PATH="custom")
    assert target.manifest_path == project / "custom" / "manifest.json"
    warehouse = open_warehouse(target)
    try:
        assert warehouse.relations.receipts.schema == DELIVERY
    finally:
        warehouse.close()
    no_env = engine.target(cwd=dbt_project(engine, None, project_yml=PROJECT_YML + "target-path: custom\n"))
    assert no_env.manifest_path == project / "custom" / "manifest.json"


def test_without_a_manifest_the_project_var_or_the_target_schema(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    cases = [
        ("vars:\n  tiktok_delivery_schema: deliveries\n", "deliveries", "var tiktok_delivery_schema", "receipts"),
        ("vars:\n  tiktok_outbox:\n    tiktok_delivery_schema: scoped\n", "scoped", "var tiktok_delivery_schema",
         "receipts"),
        ("vars:\n  tiktok_delivery_schema: null\n", "tiktok", "the target's schema", "receipts"),
        ("vars:\n  tiktok_delivery_schema: \"{{ env_var('X') }}\"\n", "tiktok", "the target's schema", "receipts"),
        ("vars:\n  tiktok_delivery_receipts_identifier: sent_events\n  tiktok_delivery_runs_identifier: send_runs\n",
         "tiktok", "the target's schema", "renamed"),
    ]
    for extra, schema, origin, names in cases:
        target = engine.target(cwd=dbt_project(engine, None, project_yml=PROJECT_YML + extra))
        assert target.manifest_path is not None and not target.manifest_path.exists()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="tiktok_sender"):
            warehouse = open_warehouse(target, read_only=True)
        warehouse.close()
        receipts, runs = (("sent_events", "send_runs") if names == "renamed"
                          else ("tiktok_delivery_receipts", "tiktok_delivery_runs"))
        assert warehouse.relations.receipts == Relation(schema, receipts)
        assert warehouse.relations.runs == Relation(schema, runs)
        assert warehouse.relations.outbox == Relation("tiktok", "tiktok_events_outbox")
        assert warehouse.relations.origin.startswith(origin)
        if "env_var" in extra:
            assert "is not a plain name" in caplog.text


def test_receipts_left_in_the_target_schema_are_not_silently_abandoned(
    engine: Engine, parsed: dict[str, dict[str, Any]]
) -> None:
    engine.outbox.add(5)
    warehouse = open_warehouse(engine.target())  # no project: the target's schema, as before
    try:
        warehouse.ensure_delivery_tables()
        warehouse.append_receipts(receipts_table(warehouse, 5))
    finally:
        warehouse.close()
    warehouse = open_warehouse(engine.target(cwd=dbt_project(engine, parsed[engine.name])))
    try:
        with pytest.raises(WarehouseError) as caught:
            warehouse.ensure_delivery_tables()
    finally:
        warehouse.close()
    text = str(caught.value)
    assert text.startswith(f"the receipts table is {DELIVERY}.tiktok_delivery_receipts (from dbt's manifest ")
    assert "tiktok.tiktok_delivery_receipts does, from earlier runs: move the receipts and runs" in text
    assert f"alter table tiktok.tiktok_delivery_receipts set schema {DELIVERY}" in text


def test_the_postgres_lease_is_the_delivery_schema(request: pytest.FixtureRequest, tmp_path: Path,
                                                   parsed: dict[str, dict[str, Any]]) -> None:
    """Two targets whose outbox schemas differ share the lease when their receipts do."""
    engines = make_engine("postgres", request, tmp_path)
    engine = next(engines)
    try:
        plain = engine.target()  # receipts in the target's schema, tiktok
        by_manifest = engine.target(cwd=dbt_project(engine, parsed["postgres"]))  # in delivery
        (tmp_path / "var-project").mkdir()
        (tmp_path / "var-project" / "dbt_project.yml").write_text(
            PROJECT_YML + f"vars:\n  tiktok_delivery_schema: {DELIVERY}\n")
        by_var = engine.target(cwd=tmp_path / "var-project")
        first = open_warehouse(by_manifest)
        try:
            open_warehouse(plain).close()  # another delivery schema, another lease
            with pytest.raises(WarehouseBusyError, match=f"the delivery lease of schema {DELIVERY} in database"):
                open_warehouse(by_var)
        finally:
            first.close()
    finally:
        engines.close()
