"""The dbt project built end to end on the demo data, in a DuckDB file of its own.

Checks what the outbox promises its readers: events of every business model, hashed keys only,
no raw email or phone anywhere downstream of staging, values that vary, every conversion either
outboxed or excluded with a reason, event ids stable across rebuilds, and an append-only outbox.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from dbt_harness import PROJECT_ROOT, build_demo_warehouse, dbt_env, raw_identifiers, run_dbt

SCHEMA = "tiktok"
SOURCE_SCHEMA = "raw_first_party"
HEX64 = re.compile(r"[0-9a-f]{64}")
EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("build") / "warehouse.duckdb"
    build_demo_warehouse(path)
    return path


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_outbox_holds_every_business_model(warehouse):
    rows = dict(query(warehouse, f"select business_model, count(*) from {SCHEMA}.tiktok_events_outbox group by 1"))
    assert set(rows) == {"ecommerce", "subscription_app", "saas"}
    assert all(n > 50 for n in rows.values()), rows
    events = {e for (e,) in query(warehouse, f"select distinct event from {SCHEMA}.tiktok_events_outbox")}
    assert {"CompletePayment", "Subscribe", "StartTrial", "SubmitForm"} <= events


def test_hashed_columns_are_hex_or_null(warehouse):
    for column in ("email_sha256", "phone_sha256", "external_id_sha256"):
        values = query(warehouse, f"select {column} from {SCHEMA}.tiktok_events_outbox where {column} is not null")
        assert values, f"no {column} at all"
        assert all(HEX64.fullmatch(v) for (v,) in values), column




def test_no_raw_email_or_phone_downstream_of_staging(warehouse):
    pii = raw_identifiers(warehouse)
    assert len(pii) > 1000
    relations = query(
        warehouse,
        f"""select table_name from information_schema.tables
            where table_schema = '{SCHEMA}' and table_name not like 'stg\\_%' escape '\\'""",
    )
    seeds = {"country_calling_codes", "fx_rates", "tiktok_currencies", "tiktok_standard_events",
             "tiktok_event_mapping", "pltv_calibration_factors"}
    scanned = 0
    for (table,) in relations:
        if table in seeds:
            continue
        columns = query(
            warehouse,
            f"""select column_name from information_schema.columns
                where table_schema = '{SCHEMA}' and table_name = '{table}' and data_type = 'VARCHAR'""",
        )
        for (column,) in columns:
            values = {v for (v,) in query(warehouse, f'select distinct "{column}" from {SCHEMA}."{table}"') if v}
            leaked = values & pii
            assert not leaked, f"{table}.{column} holds raw identifiers, e.g. {sorted(leaked)[:3]}"
            emails = [v for v in values if EMAIL_LIKE.search(v)]
            assert not emails, f"{table}.{column} holds email-like values, e.g. {emails[:3]}"
            scanned += 1
    assert scanned > 50


def test_values_vary_per_anchor_event(warehouse):
    for event, n, distinct, cv in query(
        warehouse,
        f"""select event, count(value), count(distinct value), stddev_samp(value) / avg(value)
            from {SCHEMA}.tiktok_events_outbox where is_value_anchor and value is not null group by event""",
    ):
        assert n > 20 and distinct > n / 4 and cv > 0.2, (event, n, distinct, cv)


def test_every_conversion_is_outboxed_or_excluded_with_a_reason(warehouse):
    (conversions,) = query(warehouse, f"select count(*) from {SCHEMA}.int_conversions")[0]
    (outboxed,) = query(warehouse, f"select count(*) from {SCHEMA}.tiktok_events_outbox")[0]
    reasons = dict(
        query(warehouse, f"select exclusion_reason, count(*) from {SCHEMA}.tiktok_events_excluded group by 1")
    )
    assert outboxed + sum(reasons.values()) == conversions
    assert None not in reasons and "not_appended" not in reasons
    # the demo data's deliberate flaws each surface as their reason
    deliberate = {"event_too_old", "not_completed", "invalid_currency", "event_in_future", "duplicate_event_id"}
    assert deliberate <= set(reasons)


def copy_of(warehouse: Path, tmp_path: Path) -> Path:
    """A copy to mutate; DuckDB views name their catalog after the file, so the name is kept."""
    copy = tmp_path / warehouse.name
    shutil.copy(warehouse, copy)
    return copy


def snapshot(path: Path) -> dict[str, tuple]:
    return {
        row[0]: row[1:]
        for row in query(path, f"select event_id, conversion_id, value, outboxed_at from {SCHEMA}.tiktok_events_outbox")
    }


def test_rebuild_appends_nothing_and_ids_are_stable(warehouse, tmp_path):
    copy = copy_of(warehouse, tmp_path)
    before = snapshot(copy)
    run_dbt(["build", "--select", "+tiktok_events_outbox", "--exclude", "resource_type:unit_test"], copy)
    assert snapshot(copy) == before
    run_dbt(["run", "--full-refresh", "--select", "tiktok_events_outbox"], copy)
    after = snapshot(copy)
    assert set(after) == set(before)
    assert {k: v[:2] for k, v in after.items()} == {k: v[:2] for k, v in before.items()}


def test_incremental_build_appends_new_conversions_only(warehouse, tmp_path):
    copy = copy_of(warehouse, tmp_path)
    before = snapshot(copy)
    with duckdb.connect(str(copy)) as con:
        (customer,) = con.execute(
            f"select customer_id from {SCHEMA}.int_customer_identities where email_sha256 is not null limit 1"
        ).fetchone()
        con.execute(
            f"""insert into {SOURCE_SCHEMA}.orders
                select 'ORD-NEW-1', ?, now()::timestamp - interval 1 hour, 'completed', 'USD',
                       120, 0, 100, 0, now()::timestamp""",
            [customer],
        )
    run_dbt(["run", "--select", "+tiktok_events_outbox"], copy)
    after = snapshot(copy)
    assert set(after) - set(before) == {"purchase-ORD-NEW-1"}
    assert {k: after[k] for k in before} == before


def test_a_static_value_fails_the_build(warehouse, tmp_path):
    """A floor above every score makes every value the same: the variance test must catch it."""
    copy = copy_of(warehouse, tmp_path)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--full-refresh",
         "--select", "int_tiktok_events_candidates", "tiktok_events_outbox", "--exclude", "resource_type:unit_test",
         "--vars", "{tiktok_value_floor: 1000000}",
         "--project-dir", str(PROJECT_ROOT)],
        cwd=PROJECT_ROOT, env=dbt_env(copy), capture_output=True, text=True, check=False,
    )
    assert proc.returncode != 0
    failed = [line for line in proc.stdout.splitlines() if "FAIL" in line]
    assert any("value_varies" in line for line in failed), proc.stdout[-3000:]
