"""The dbt project built end to end on a real Spark (scripts/spark_server.py, Spark Connect).

`dbt build --target spark` on the demo data must pass every model, data test and unit test. The
seeds, reference and demo, are loaded by scripts/spark_seed.py (dbt-spark's seed loads empty
cells as 'None' or empty strings, dbt-labs/dbt-adapters#487), so the build excludes them. The same CSVs are built into
DuckDB with the same `tiktok_as_of`, and the two warehouses must agree cell for cell on the
outbox, the exclusions, the hashed identifiers and the experiment cells, as PostgreSQL and DuckDB
do (test_postgres_build.py). Then: after a new order, a rebuild appends its event alone and leaves
every row already appended as it was, through Spark's table-rebuilt keyed models and its
append-only outbox.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dbt_harness import DEMO_AS_OF, PROJECT_ROOT, Builds, comparable_rows, session_cache

# Columns local to each warehouse, left out of the cell-for-cell comparisons: source_fingerprint
# (an MD5 of the raw row as each warehouse holds it) and outbox_seq (the appending build's clock).
LOCAL_COLUMNS = frozenset({"source_fingerprint", "outbox_seq"})

pytest_plugins = ["spark_fixtures"]

SCHEMA = "tiktok"
DEMO_SCALE = "0.3"  # of the demo's rows: every business model and path, about 600 outbox rows
AS_OF = DEMO_AS_OF
EVERYTHING = ["build", "--exclude", "tag:monitor"]
SPARK_BUILD = ["build", "--exclude", "tag:monitor", "resource_type:seed"]  # scripts/spark_seed.py loads them


class SparkBuilds(Builds):
    def __init__(self, server: Any, work: Path) -> None:
        super().__init__(work, "spark", AS_OF, env=server.env)
        self.server = server

    def spark(self, sql: str) -> list[tuple]:
        session = self.server.session()
        try:
            return [tuple(row) for row in session.sql(sql).collect()]
        finally:
            session.stop()


@pytest.fixture(scope="module")
def built(spark_server, tmp_path_factory: pytest.TempPathFactory) -> SparkBuilds:
    builds = SparkBuilds(spark_server, tmp_path_factory.mktemp("spark-build"))
    seeds = builds.generate_demo_data(DEMO_SCALE)
    for schema in (SCHEMA, "raw_first_party"):  # the server is shared with the sender's Spark tests
        builds.spark(f"drop schema if exists {schema} cascade")
    # DuckDB builds the same CSVs (or takes that build from another module of the session)
    # while the seeds load into Spark and Spark builds
    with ThreadPoolExecutor(1) as pool:
        duck = pool.submit(builds.shared_run, "duckdb", EVERYTHING, "duckdb",
                           session_cache(tmp_path_factory, "duckdb-builds"))
        load = subprocess.run([sys.executable, "scripts/spark_seed.py", "--demo", str(seeds)], check=False,
                              cwd=PROJECT_ROOT, env=builds.env(), capture_output=True, text=True, timeout=600)
        if load.returncode != 0:
            pytest.fail(f"spark_seed.py failed:\n{load.stdout[-2000:]}\n{load.stderr[-4000:]}")
        spark = builds.start("spark", SPARK_BUILD)
        duck.result()
        builds.wait({"spark": spark})
    return builds


def test_build_passes_every_model_data_test_and_unit_test(built):
    by_kind: dict[str, list[str]] = {}
    for result in built.run_results("spark"):
        by_kind.setdefault(result["unique_id"].split(".")[0], []).append(result["status"])
    assert {s for statuses in by_kind.values() for s in statuses} <= {"success", "pass", "no-op"}, by_kind
    assert len(by_kind["model"]) >= 25 and "seed" not in by_kind
    assert len(by_kind["test"]) >= 100 and len(by_kind["unit_test"]) >= 7
    duck_kinds = {r["unique_id"].split(".")[0] for r in built.run_results("duckdb")}
    assert set(by_kind) == duck_kinds - {"seed"}


@pytest.mark.parametrize(("relation", "columns"), [
    ("raw_first_party.customers", "email, phone"),
    (f"{SCHEMA}.country_calling_codes", "trunk_prefix, calling_code"),
])
def test_the_seed_loader_keeps_empty_cells_null(built, relation, columns):
    """The loader's reason to exist: a blank CSV cell is null on Spark, as in DuckDB's seeds."""
    counts = f"select count(*), {', '.join(f'count({c})' for c in columns.split(', '))} from {relation}"
    spark_counts = built.spark(counts)
    with duckdb.connect(str(built.duckdb_path), read_only=True) as con:
        duck_counts = con.execute(counts).fetchall()
    assert spark_counts == duck_counts
    (total, first, _), = spark_counts
    assert 0 < first < total


def test_keyed_models_are_tables_and_the_outbox_appends(built):
    nodes = built.manifest("spark")["nodes"]
    config = {n["name"]: n["config"] for n in nodes.values() if n["resource_type"] == "model"}
    assert config["int_conversions"]["materialized"] == "table"
    assert config["tiktok_events_outbox"]["materialized"] == "incremental"
    assert config["tiktok_events_outbox"]["incremental_strategy"] == "append"
    assert config["tiktok_events_outbox"]["file_format"] == "parquet"


def columns_of(built: SparkBuilds, relation: str) -> list[str]:
    return [row[0] for row in built.spark(f"describe {SCHEMA}.{relation}")
            if row[0] and not row[0].startswith("#") and row[0] not in LOCAL_COLUMNS]


@pytest.mark.parametrize(
    "relation",
    ["tiktok_events_outbox", "tiktok_events_excluded", "int_customer_identities", "int_experiment_assignments"],
)
def test_spark_and_duckdb_agree_cell_for_cell(built, relation):
    """Same CSVs, same tiktok_as_of: every row of these relations is identical on both engines
    (source_fingerprint aside: an MD5 of the raw row as each warehouse holds it)."""
    columns = columns_of(built, relation)
    assert columns, relation
    on_spark = comparable_rows(built.spark(f"select {', '.join(f'`{c}`' for c in columns)} from {SCHEMA}.{relation}"))
    with duckdb.connect(str(built.duckdb_path), read_only=True) as con:
        on_duckdb = comparable_rows(con.execute(
            f"select {', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)} from {SCHEMA}.{relation}").fetchall())
    assert len(on_spark) > 100
    only_spark, only_duckdb = sorted(on_spark - on_duckdb, key=str), sorted(on_duckdb - on_spark, key=str)
    assert not only_spark and not only_duckdb, (
        f"{relation}: {len(only_spark)} rows only on Spark, {len(only_duckdb)} only on DuckDB; columns {columns}\n"
        f"spark:  {only_spark[:3]}\nduckdb: {only_duckdb[:3]}"
    )


def outbox(built: SparkBuilds) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in built.spark(
        f"select event_id, conversion_id, value, outboxed_at from {SCHEMA}.tiktok_events_outbox")}


def test_a_rebuild_appends_a_new_conversion_alone(built):
    """One order arrives after the build; the next run appends its event and nothing else, and
    leaves every row already in the outbox as it was (one run: each costs a minute on Spark)."""
    before = outbox(built)
    (customer,) = built.spark(f"""select customer_id from {SCHEMA}.int_customer_identities
                                 where email_sha256 is not null order by customer_id limit 1""")[0]
    built.spark(f"""insert into raw_first_party.orders
                    select 'ORD-NEW-1', '{customer}', timestamp '{AS_OF}' - interval 1 hour, 'completed', 'USD',
                           120, 0, 100, 0, timestamp '{AS_OF}'""")
    built.wait({"increment": built.start("increment", ["run", "--select", "+tiktok_events_outbox",
                                                       "--exclude", "resource_type:seed"], "spark")})
    after = outbox(built)
    assert set(after) - set(before) == {"purchase-ORD-NEW-1"}
    assert {k: after[k] for k in before} == before
