"""Staging turns source timestamps with a time zone into UTC, whatever the session's time zone.

A copy of the project is built (no demo data) against source tables written by the test: an
app_events table whose occurred_at is a TIMESTAMPTZ, and a customers table with one naive and one
zoned timestamp. dbt's DuckDB sessions run in New York (the profile's TimeZone setting) and the
staged views are read from a session in Tokyo: a zoned value must come out as its UTC instant, a
naive one as written (naive timestamps are UTC by the sources' contract).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from dbt_harness import copy_project, run_dbt

PROFILE = """\
tiktok_outbox:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('DBT_DUCKDB_PATH') }}"
      schema: tiktok
      threads: 1
      settings:
        TimeZone: America/New_York
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("staging_utc")
    project = copy_project(work / "project")
    (project / "profiles.yml").write_text(PROFILE)
    path = work / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("create schema raw_first_party")
        con.execute("create table raw_first_party.app_events (app_event_id varchar, customer_id varchar, "
                    "subscription_id varchar, event_name varchar, occurred_at timestamptz, platform varchar, "
                    "ip varchar, user_agent varchar)")
        con.execute("insert into raw_first_party.app_events values "
                    "('E1', 'C1', null, 'app_install', '2026-01-02 03:04:05+00', 'ios', null, null), "
                    "('E2', 'C1', null, 'app_open', '2026-01-02 03:04:05+09', 'ios', null, null)")
        con.execute("create table raw_first_party.customers (customer_id varchar, email varchar, phone varchar, "
                    "country_code varchar, created_at timestamp, updated_at timestamptz)")
        con.execute("insert into raw_first_party.customers values "
                    "('C1', null, null, 'US', '2026-01-02 03:04:05', '2026-01-02 03:04:05-05')")
    run_dbt(["run", "--select", "stg_first_party__app_events", "stg_first_party__customers",
             "--vars", json.dumps({"tiktok_load_demo_data": False})],
            path, extra_env={"DBT_PROFILES_DIR": str(project)}, project=project)
    return path


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("set TimeZone = 'Asia/Tokyo'")
        return con.execute(sql).fetchall()


def test_zoned_source_timestamps_are_staged_as_the_utc_instant(warehouse):
    assert query(warehouse, "select app_event_id, occurred_at from tiktok.stg_first_party__app_events "
                            "order by app_event_id") == [
        ("E1", datetime(2026, 1, 2, 3, 4, 5)),
        ("E2", datetime(2026, 1, 1, 18, 4, 5)),
    ]
    ((created_at, updated_at),) = query(
        warehouse, "select created_at, updated_at from tiktok.stg_first_party__customers")
    assert created_at == datetime(2026, 1, 2, 3, 4, 5)  # naive: kept as written
    assert updated_at == datetime(2026, 1, 2, 8, 4, 5)


def test_the_staged_columns_have_no_zone(warehouse):
    types = dict(query(warehouse, "select column_name, data_type from information_schema.columns "
                                  "where table_name = 'stg_first_party__app_events'"))
    assert types["occurred_at"] == "TIMESTAMP"


def test_a_plain_cast_would_give_the_sessions_wall_clock(warehouse):
    # what staging did before: the test above would fail with it
    assert query(warehouse, "select cast(occurred_at as timestamp) from raw_first_party.app_events "
                            "where app_event_id = 'E1'") == [(datetime(2026, 1, 2, 12, 4, 5),)]
