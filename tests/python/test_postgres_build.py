"""The dbt project built end to end on a real PostgreSQL 15 server (scripts/pg_cluster.py).

`dbt build --target postgres` on the demo data must pass every model, data test and unit test.
The same CSVs are built into DuckDB at the same time with the same `tiktok_as_of`, and the two
warehouses must agree cell for cell on the outbox, the exclusions, the hashed identifiers and the
experiment cells: ids, hashes, values and cells do not depend on the engine. Then the outbox
checks of test_outbox_build.py that concern the engine: every business model present, hashed
keys only, outbox + exclusions = conversions, a rebuild appends nothing, a new conversion is
appended alone, and a static value fails the build.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dbt_harness import DEMO_AS_OF, Builds, comparable_rows

# Columns local to each warehouse, left out of the cell-for-cell comparisons: source_fingerprint
# (an MD5 of the raw row as each warehouse holds it) and outbox_seq (the appending build's clock).
LOCAL_COLUMNS = frozenset({"source_fingerprint", "outbox_seq"})

pytest_plugins = ["pg_fixtures"]

SCHEMA = "tiktok"
SOURCE_SCHEMA = "raw_first_party"
HEX64 = re.compile(r"[0-9a-f]{64}")
# The demo data and every build are pinned to one instant, so both engines see the same "now".
AS_OF = DEMO_AS_OF


class PostgresBuilds(Builds):
    def __init__(self, cluster: Any, work: Path) -> None:
        super().__init__(work, "postgres", AS_OF, env=cluster.env)
        self.cluster = cluster

    def dbt(self, name: str, args: list[str], database: str | None = None,
            variables: dict | None = None) -> subprocess.Popen[str]:
        """`dbt ARGS --target postgres`, in `database` (a clone) or the cluster's own."""
        return self.start(name, args, variables=variables,
                          env={"TIKTOK_PG_DATABASE": database} if database else None)


@pytest.fixture(scope="module")
def built(postgres_cluster, tmp_path_factory: pytest.TempPathFactory) -> PostgresBuilds:
    """Demo data for AS_OF, then `dbt build` into PostgreSQL and DuckDB side by side."""
    builds = PostgresBuilds(postgres_cluster, tmp_path_factory.mktemp("pg-build"))
    builds.generate_demo_data()
    # `dbt build` loads the seeds itself, ordered before the staging models that read them; the
    # explicit selection takes the audit models too (a plain `dbt build` leaves them for after a push).
    everything = ["build", "--exclude", "tag:monitor"]
    builds.wait({
        "postgres": builds.dbt("postgres", everything),
        "duckdb": builds.start("duckdb", everything, target="duckdb"),
    })
    return builds


def pg(built: PostgresBuilds, sql: str, database: str | None = None) -> list[tuple]:
    return built.cluster.query(sql, dbname=database)


def dk(built: PostgresBuilds, sql: str) -> list[tuple]:
    with duckdb.connect(str(built.duckdb_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_cluster_stops_and_leaves_nothing_behind(postgres_cluster, new_postgres_cluster):
    """The helper the suite relies on: a second cluster starts next to the first, then is gone."""
    with new_postgres_cluster() as other:
        assert other.port != postgres_cluster.port
        assert other.query("select current_setting('fsync'), current_database()") == [("off", "tiktok_outbox")]
        assert other.query("select lower('ÉÑ')") == [("éñ",)]
        pid, base = other.server_pid(), other.base_dir
        assert pid and base.is_dir()
    assert not base.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_build_passes_every_model_data_test_and_unit_test(built):
    results = built.run_results("postgres")
    by_kind: dict[str, list[str]] = {}
    for result in results:
        by_kind.setdefault(result["unique_id"].split(".")[0], []).append(result["status"])
    assert {s for statuses in by_kind.values() for s in statuses} <= {"success", "pass", "no-op"}, by_kind
    assert len(by_kind["model"]) >= 25 and len(by_kind["seed"]) >= 13
    assert len(by_kind["test"]) >= 100 and len(by_kind["unit_test"]) >= 7
    assert len(results) == len(built.run_results("duckdb"))


def test_outbox_holds_every_business_model(built):
    rows = dict(pg(built, f"select business_model, count(*) from {SCHEMA}.tiktok_events_outbox group by 1"))
    assert set(rows) == {"ecommerce", "subscription_app", "saas"}
    assert all(n > 50 for n in rows.values()), rows
    events = {e for (e,) in pg(built, f"select distinct event from {SCHEMA}.tiktok_events_outbox")}
    assert {"CompletePayment", "Subscribe", "StartTrial", "SubmitForm"} <= events


def test_hashed_columns_are_hex_or_null(built):
    for column in ("email_sha256", "phone_sha256", "external_id_sha256"):
        values = pg(built, f"select {column} from {SCHEMA}.tiktok_events_outbox where {column} is not null")
        assert values, f"no {column} at all"
        assert all(HEX64.fullmatch(v) for (v,) in values), column


def test_every_conversion_is_outboxed_or_excluded_with_a_reason(built):
    (conversions,) = pg(built, f"select count(*) from {SCHEMA}.int_conversions")[0]
    (outboxed,) = pg(built, f"select count(*) from {SCHEMA}.tiktok_events_outbox")[0]
    reasons = dict(pg(built, f"select exclusion_reason, count(*) from {SCHEMA}.tiktok_events_excluded group by 1"))
    assert outboxed + sum(reasons.values()) == conversions
    assert None not in reasons
    deliberate = {"event_too_old", "not_completed", "invalid_currency", "event_in_future", "duplicate_event_id"}
    assert deliberate <= set(reasons)


def outbox_columns(built: PostgresBuilds) -> list[str]:
    return [c for (c,) in pg(built, f"""select column_name from information_schema.columns
                                      where table_schema = '{SCHEMA}' and table_name = 'tiktok_events_outbox'
                                      order by ordinal_position""")]


@pytest.mark.parametrize(
    "relation",
    ["tiktok_events_outbox", "tiktok_events_excluded", "int_customer_identities", "int_experiment_assignments"],
)
def test_postgres_and_duckdb_agree_cell_for_cell(built, relation):
    """Same CSVs, same tiktok_as_of: every row of these relations is identical on both engines."""
    # source_fingerprint is an MD5 of the raw row as each warehouse holds it (the seed loaders do
    # not agree on blank strings): a change detector local to each warehouse, not a shared value
    columns = [c for (c,) in pg(built, f"""select column_name from information_schema.columns
                                         where table_schema = '{SCHEMA}' and table_name = '{relation}'
                                         order by ordinal_position""") if c not in LOCAL_COLUMNS]
    assert columns, relation
    select = ", ".join(f'"{c}"' for c in columns)
    on_pg = comparable_rows(pg(built, f"select {select} from {SCHEMA}.{relation}"))
    on_duckdb = comparable_rows(dk(built, f"select {select} from {SCHEMA}.{relation}"))
    assert len(on_pg) > 100
    only_pg, only_duckdb = sorted(on_pg - on_duckdb, key=str), sorted(on_duckdb - on_pg, key=str)
    assert not only_pg and not only_duckdb, (
        f"{relation}: {len(only_pg)} rows only on PostgreSQL, {len(only_duckdb)} only on DuckDB; columns {columns}\n"
        f"postgres: {only_pg[:3]}\nduckdb:   {only_duckdb[:3]}"
    )


def snapshot(built: PostgresBuilds, database: str) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in pg(
        built, f"select event_id, conversion_id, value, outboxed_at from {SCHEMA}.tiktok_events_outbox", database)}


def test_rebuild_appends_nothing_and_a_new_conversion_is_appended_alone(built):
    database = built.cluster.clone_database(built.cluster.dbname, "rebuild")
    before = snapshot(built, database)
    built.wait({"rerun": built.dbt("rerun", ["run", "--select", "+tiktok_events_outbox"], database=database)})
    assert snapshot(built, database) == before

    (customer,) = pg(built, f"""select customer_id from {SCHEMA}.int_customer_identities
                               where email_sha256 is not null order by customer_id limit 1""", database)[0]
    pg(built, f"""insert into {SOURCE_SCHEMA}.orders
                  select 'ORD-NEW-1', '{customer}', timestamp '{AS_OF}' - interval '1 hour', 'completed', 'USD',
                         120, 0, 100, 0, timestamp '{AS_OF}'""", database)
    built.wait({"increment": built.dbt("increment", ["run", "--select", "+tiktok_events_outbox"], database=database)})
    after = snapshot(built, database)
    assert set(after) - set(before) == {"purchase-ORD-NEW-1"}
    assert {k: after[k] for k in before} == before


def test_a_failing_gate_stops_the_append(built):
    """A floor above every score makes every value the same: the variance gate on the build's
    batch fails here too, so nothing is appended; without it the next build appends."""
    database = built.cluster.clone_database(built.cluster.dbname, "static_value")
    pg(built, f"delete from {SCHEMA}.tiktok_events_outbox", database)  # as if nothing had been sent yet
    select = ["--select", "int_tiktok_events_candidates+", "--exclude", "resource_type:unit_test", "tag:audit"]
    proc = built.dbt("static", ["build", "--full-refresh", *select], database=database,
                     variables={"tiktok_value_floor": 1000000})
    assert proc.wait(timeout=900) != 0
    failed = [line for line in built.output("static").splitlines() if "FAIL" in line]
    assert any("value_varies_int_tiktok_events_outbox_batch" in line for line in failed), built.output("static")[-3000:]
    assert pg(built, f"select count(*) from {SCHEMA}.tiktok_events_outbox", database) == [(0,)]
    built.wait({"unstatic": built.dbt("unstatic", ["build", *select], database=database)})
    (appended,) = pg(built, f"select count(*) from {SCHEMA}.tiktok_events_outbox", database)[0]
    assert appended > 1000
