"""Snowflake, emulated: the dbt project built by dbt-snowflake against fakesnow on 127.0.0.1.

fakesnow (scripts/snowflake_emulator.py) answers Snowflake's HTTP protocol and runs each statement
on DuckDB after translating it, so this is an emulation: it shows that the project's Snowflake SQL
(the snowflake__ macros, dbt-snowflake's materializations, the outbox contract) runs and computes
what DuckDB computes under fakesnow's translation, not that Snowflake itself accepts it.

dbt-snowflake and fakesnow live in .venv-snowflake (`make setup-snowflake`; fakesnow pins a DuckDB
of its own). Without it this module says so and skips, except under CI=true, where that is a
failure. The emulator runs in a subprocess of that virtualenv, the builds through its dbt, and
this module (the project's .venv) reads the emulated warehouse through the same virtualenv's
Snowflake connector, as Arrow.

`dbt build --target snowflake_emulated --exclude tag:monitor` on the demo data must pass every
seed, model, data test and unit test (the monitors are left out as on every engine's build test:
they judge deliveries, and there are none). The same CSVs are built into DuckDB with the same
`tiktok_as_of`, and the two must agree cell for cell on the outbox, the exclusions, the hashed
identifiers and the experiment cells. Then: a rebuild appends nothing, and a new conversion is
appended alone, through dbt-snowflake's delete+insert and append incremental models (their scratch
relations transient tables). Last, `sender push` of the built outbox through the ADBC driver, and
`dbt build --selector audit` reading its receipts.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from snowflake_fixtures import SNOWFLAKE_BIN, Emulator, start_emulator

from dbt_harness import DEMO_AS_OF, PROJECT_ROOT, VENV_BIN, Builds, comparable_rows, session_cache

# Columns local to each warehouse, left out of the cell-for-cell comparisons: source_fingerprint
# (an MD5 of the raw row as each warehouse holds it) and outbox_seq (the appending build's clock).
LOCAL_COLUMNS = frozenset({"source_fingerprint", "outbox_seq"})

SCHEMA = "tiktok"
DEMO_SCALE = "0.3"  # of the demo's rows: every business model and path, about 600 outbox rows
AS_OF = DEMO_AS_OF
EVERYTHING = ["build", "--exclude", "tag:monitor"]

# Run by .venv-snowflake's Python: one statement through the Snowflake connector; with `rows`, the
# result as an Arrow IPC stream on stdout (the connector's own Arrow fetch).
CLIENT = """
import sys
import pyarrow as pa
import snowflake.connector

port, mode, sql = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with snowflake.connector.connect(
    account="fakesnow", user="fake", password="snow", host="127.0.0.1", port=port, protocol="http",
    database="ANALYTICS", schema="TIKTOK", session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
) as conn:
    cursor = conn.cursor().execute(sql)
    if mode == "rows":
        table = cursor.fetch_arrow_all(force_return_table=True)
        with pa.ipc.new_stream(sys.stdout.buffer, table.schema) as out:
            out.write_table(table)
"""


@dataclass
class ConnectorEmulator:
    """The module's emulator (snowflake_fixtures), read through .venv-snowflake's Snowflake
    connector: another client than the sender's ADBC driver."""

    running: Emulator

    @property
    def env(self) -> dict[str, str]:
        return self.running.env

    def _client(self, mode: str, sql: str) -> bytes:
        proc = subprocess.run([str(SNOWFLAKE_BIN / "python"), "-c", CLIENT, str(self.running.port), mode, sql],
                              capture_output=True, timeout=300, check=False)
        if proc.returncode != 0:
            pytest.fail(f"the emulator refused {sql!r}:\n{proc.stderr.decode()[-3000:]}")
        return proc.stdout

    def query(self, sql: str) -> list[tuple]:
        table = pa.ipc.open_stream(io.BytesIO(self._client("rows", sql))).read_all()
        return [tuple(row.values()) for row in table.to_pylist()]

    def execute(self, sql: str) -> None:
        self._client("execute", sql)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectorEmulator]:
    """fakesnow on a free port of 127.0.0.1, its databases in memory, stopped at the end."""
    running = start_emulator(tmp_path_factory.mktemp("fakesnow"))
    yield ConnectorEmulator(running)
    running.stop()


class SnowflakeBuilds(Builds):
    def __init__(self, emulator: ConnectorEmulator, work: Path) -> None:
        # the example profiles as they are now (a profiles.yml copied before the emulated target
        # existed would lack it)
        profiles = work / "profiles"
        profiles.mkdir()
        shutil.copy(PROJECT_ROOT / "profiles.example.yml", profiles / "profiles.yml")
        super().__init__(work, "snowflake_emulated", AS_OF, env={**emulator.env, "DBT_PROFILES_DIR": str(profiles)},
                         dbt_for={"snowflake_emulated": SNOWFLAKE_BIN / "dbt"})
        self.emulator = emulator


@pytest.fixture(scope="module")
def built(emulator: ConnectorEmulator, tmp_path_factory: pytest.TempPathFactory) -> SnowflakeBuilds:
    """Demo data for AS_OF, then `dbt build` into the emulator and into DuckDB side by side."""
    builds = SnowflakeBuilds(emulator, tmp_path_factory.mktemp("snowflake-build"))
    builds.generate_demo_data(DEMO_SCALE)  # fakesnow loads seeds at about 150 rows a second
    snowflake = builds.start("snowflake", EVERYTHING)
    builds.shared_run("duckdb", EVERYTHING, "duckdb", session_cache(tmp_path_factory, "duckdb-builds"))
    builds.wait({"snowflake": snowflake})
    return builds


def test_build_passes_every_seed_model_data_test_and_unit_test(built):
    by_kind: dict[str, list[str]] = {}
    for result in built.run_results("snowflake"):
        by_kind.setdefault(result["unique_id"].split(".")[0], []).append(result["status"])
    assert {s for statuses in by_kind.values() for s in statuses} <= {"success", "pass", "no-op"}, by_kind
    assert len(by_kind["model"]) >= 25 and len(by_kind["seed"]) >= 13
    assert len(by_kind["test"]) >= 100 and len(by_kind["unit_test"]) >= 7
    assert len(built.run_results("snowflake")) == len(built.run_results("duckdb"))


def test_the_outbox_is_built_under_its_contract(built):
    """dbt-snowflake's DDL for the enforced contract: the declared types, as Snowflake names them,
    and the NOT NULL columns."""
    columns = {name: (kind, scale, nullable) for name, kind, scale, nullable in built.emulator.query(
        f"""select lower(column_name), data_type, numeric_scale, is_nullable from information_schema.columns
            where table_schema = '{SCHEMA.upper()}' and table_name = 'TIKTOK_EVENTS_OUTBOX'""")}
    assert columns["event_id"] == ("TEXT", None, "NO")
    assert columns["event_time"] == ("NUMBER", 0, "NO")
    assert columns["value"] == ("NUMBER", 2, "YES")
    assert columns["calibration_factor"] == ("FLOAT", None, "YES")
    assert columns["is_value_anchor"] == ("BOOLEAN", None, "NO")
    assert columns["converted_at"] == ("TIMESTAMP_NTZ", None, "NO")
    assert columns["email_sha256"] == ("TEXT", None, "YES")


def columns_of(built: SnowflakeBuilds, relation: str) -> list[str]:
    return [c for (c,) in built.emulator.query(
        f"""select lower(column_name) from information_schema.columns
            where table_schema = '{SCHEMA.upper()}' and table_name = '{relation.upper()}'
            order by ordinal_position""") if c not in LOCAL_COLUMNS]


@pytest.mark.parametrize(
    "relation",
    ["tiktok_events_outbox", "tiktok_events_excluded", "int_customer_identities", "int_experiment_assignments"],
)
def test_emulated_snowflake_and_duckdb_agree_cell_for_cell(built, relation):
    """Same CSVs, same tiktok_as_of: every row of these relations is identical on both engines
    (source_fingerprint aside: an MD5 of the raw row as each warehouse holds it)."""
    columns = columns_of(built, relation)
    assert columns, relation
    select = ", ".join(columns)
    on_snowflake = comparable_rows(built.emulator.query(f"select {select} from {SCHEMA}.{relation}"))
    with duckdb.connect(str(built.duckdb_path), read_only=True) as con:
        on_duckdb = comparable_rows(con.execute(f"select {select} from {SCHEMA}.{relation}").fetchall())
    assert len(on_snowflake) > 100
    only_snowflake = sorted(on_snowflake - on_duckdb, key=str)
    only_duckdb = sorted(on_duckdb - on_snowflake, key=str)
    assert not only_snowflake and not only_duckdb, (
        f"{relation}: {len(only_snowflake)} rows only on emulated Snowflake, {len(only_duckdb)} only on DuckDB; "
        f"columns {columns}\nsnowflake: {only_snowflake[:3]}\nduckdb:    {only_duckdb[:3]}"
    )


def outbox(built: SnowflakeBuilds) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in built.emulator.query(
        f"select event_id, conversion_id, value, outboxed_at from {SCHEMA}.tiktok_events_outbox")}


def test_rebuild_appends_nothing_and_a_new_conversion_is_appended_alone(built):
    before = outbox(built)
    built.wait({"rerun": built.start("rerun", ["run", "--select", "+tiktok_events_outbox"])})
    assert outbox(built) == before

    (customer,) = built.emulator.query(f"""select customer_id from {SCHEMA}.int_customer_identities
                                           where email_sha256 is not null order by customer_id limit 1""")[0]
    built.emulator.execute(f"""insert into raw_first_party.orders
                               select 'ORD-NEW-1', '{customer}', dateadd(hour, -1, '{AS_OF}'::timestamp_ntz),
                                      'completed', 'USD', 120, 0, 100, 0, '{AS_OF}'::timestamp_ntz""")
    built.wait({"increment": built.start("increment", ["run", "--select", "+tiktok_events_outbox"])})
    # the keyed models' scratch relations are transient tables (+tmp_relation_type in dbt_project.yml)
    ddl = (built.runs["increment"] / "logs" / "dbt.log").read_text()
    for model in ("int_conversions", "int_conversions_attributed", "int_tiktok_events_candidates"):
        assert f"create or replace transient table ANALYTICS.tiktok.{model}__dbt_tmp" in ddl, model
    after = outbox(built)
    assert set(after) - set(before) == {"purchase-ORD-NEW-1"}
    assert {k: after[k] for k in before} == before


def test_the_sender_delivers_the_outbox_and_the_audit_reads_its_receipts(built):
    """From the emulated build to the audit: `sender push` of the built outbox (the repository's
    `snowflake_emulated` target, the ADBC Snowflake driver, the relations from the build's
    manifest) to the Events API emulator, `dbt build --selector audit` on emulated Snowflake, and
    tiktok_delivery_health reconciled with the receipts; `sender status` reads the same."""
    from tiktok_emulator import EmulatorThread
    from tiktok_sender.settings import Secret

    token = "tok-snowflake-e2e-7d1c"
    env = {**built.env(), "DBT_TARGET": "snowflake_emulated", "TIKTOK_ACCESS_TOKEN": token,
           "DBT_TARGET_PATH": str(built.runs["snowflake"] / "target"),
           "TIKTOK_BACKOFF_BASE": "0.01", "TIKTOK_BACKOFF_MAX": "0.05"}
    with EmulatorThread(token=Secret(token), seed=5) as api:
        push = subprocess.run([str(VENV_BIN / "sender"), "push", "--json", "--batch-size", "200"],
                              cwd=built.project, env={**env, "TIKTOK_API_URL": api.url},
                              capture_output=True, text=True, timeout=600, check=False)
        assert push.returncode == 0, push.stderr
        summary = json.loads(push.stdout)
        ((outboxed,),) = built.emulator.query(f"select count(*) from {SCHEMA}.tiktok_events_outbox")
        assert summary["pending"] == outboxed and summary["delivered"] + summary["expired"] == outboxed
        assert len(api.events()) == summary["delivered"] > 0
    built.wait({"audit": built.start("audit", ["build", "--selector", "audit"])})

    receipts = built.emulator.query(
        f"select status, count(*) from {SCHEMA}.tiktok_delivery_receipts group by status")
    assert dict(receipts) == {s: summary[s] for s in ("delivered", "expired") if summary[s]}
    ((run_id, delivered, expired, events),) = built.emulator.query(
        f"select run_id, sum(delivered), sum(expired), sum(events) from {SCHEMA}.tiktok_delivery_health"
        " group by run_id")
    assert (delivered, expired, events) == (summary["delivered"], summary["expired"], outboxed)
    assert run_id == summary["run_id"]

    status = subprocess.run([str(VENV_BIN / "sender"), "status", "--json"], cwd=built.project, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert status.returncode == 0, status.stderr
    figures = json.loads(status.stdout)
    assert (figures["outbox"], figures["delivered"], figures["pending"]) == (outboxed, summary["delivered"], 0)
    assert figures["audit"]["totals"]["delivered"] == summary["delivered"]
