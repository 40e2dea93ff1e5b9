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

from dbt_harness import PROJECT_ROOT, dbt_env, raw_identifiers, run_dbt

SCHEMA = "tiktok"
SOURCE_SCHEMA = "raw_first_party"
HEX64 = re.compile(r"[0-9a-f]{64}")
EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def warehouse(demo_warehouse: Path) -> Path:
    return demo_warehouse


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
    for column in ("email_sha256", "phone_sha256", "external_id_sha256", "first_name_sha256", "last_name_sha256",
                   "zip_code_sha256"):
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
            # a customer whose conversions may be sent: no consent needed, none refused
            f"""select customer_id from {SCHEMA}.int_customer_identities
                where email_sha256 is not null and country_code = 'US'
                  and customer_id not in (select customer_id from {SCHEMA}.int_customer_privacy)
                order by customer_id limit 1"""
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


CANDIDATES = f"{SCHEMA}.int_tiktok_events_candidates"


def add_late_and_new_conversions(path: Path, now: object) -> None:
    """Three new orders of existing customers: a recent one, one that reuses the pixel event id
    of an outboxed order (a duplicate event key), and one that arrives 40 days late."""
    with duckdb.connect(str(path)) as con:
        (customer,) = con.execute(
            f"select customer_id from {SCHEMA}.int_customer_identities where email_sha256 is not null "
            "order by customer_id limit 1"
        ).fetchone()
        (pixel_id,) = con.execute(
            f"select event_id from {SCHEMA}.tiktok_events_outbox where event = 'CompletePayment' "
            "and event_id not like 'purchase-%' order by event_id limit 1"
        ).fetchone()
        for order_id, age in (("ORD-INC-NEW", "1 hour"), ("ORD-INC-DUP", "2 hours"), ("ORD-INC-LATE", "40 days")):
            con.execute(
                f"""insert into {SOURCE_SCHEMA}.orders
                    select ?, ?, ?::timestamp - interval {age}, 'completed', 'USD', 120, 0, 100, 0, ?""",
                [order_id, customer, now, now],
            )
        con.execute(
            f"""insert into {SOURCE_SCHEMA}.web_sessions
                select 'WS-INC-DUP', ?, ?::timestamp - interval 125 minutes, null, null, '198.51.100.7',
                       'Mozilla/5.0 Test', 'https://shop.example.com/checkout', 'ORD-INC-DUP', null, ?""",
            [customer, now, pixel_id],
        )


def candidates(path: Path) -> dict[str, dict]:
    with duckdb.connect(str(path), read_only=True) as con:
        cur = con.execute(f"select * exclude (evaluated_at) from {CANDIDATES}")
        names = [d[0] for d in cur.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def test_incremental_candidates_equal_a_full_refresh(warehouse, tmp_path):
    """An incremental build evaluates the new and the open conversions only, and ends where a
    full refresh of the same data ends: same rows, reasons, values, caps and duplicate ranks."""
    (minute,) = query(warehouse, "select date_trunc('minute', now()::timestamp)")[0]
    as_of = ["--vars", f"{{tiktok_as_of: '{minute}'}}"]
    select = ["--select", "+tiktok_events_outbox"]
    (tmp_path / "incremental").mkdir()
    (tmp_path / "full").mkdir()

    incremental = copy_of(warehouse, tmp_path / "incremental")
    run_dbt(["run", "--full-refresh", *select, *as_of], incremental)
    # Mark one settled row of each kind and one open row: a build must leave the settled ones
    # alone (they are not evaluated again) and evaluate the open one again.
    marked = {}
    with duckdb.connect(str(incremental)) as con:
        for kind, where in (("sent", "exclusion_reason is null"), ("too_old", "exclusion_reason = 'event_too_old'"),
                            ("open", "exclusion_reason in ('event_in_future', 'no_match_key', 'missing_value')")):
            (marked[kind],) = con.execute(
                f"select conversion_id from {CANDIDATES} where {where} order by conversion_id limit 1"
            ).fetchone()
            con.execute(f"update {CANDIDATES} set ip = 'marked' where conversion_id = ?", [marked[kind]])
    add_late_and_new_conversions(incremental, minute)
    run_dbt(["run", *select, *as_of], incremental)

    full = copy_of(warehouse, tmp_path / "full")
    add_late_and_new_conversions(full, minute)
    run_dbt(["run", "--full-refresh", *select, *as_of], full)

    got, want = candidates(incremental), candidates(full)
    assert set(got) == set(want)
    assert got[marked["sent"]]["ip"] == got[marked["too_old"]]["ip"] == "marked"
    assert got[marked["open"]]["ip"] != "marked"
    for conversion_id in (marked["sent"], marked["too_old"]):
        got[conversion_id]["ip"] = want[conversion_id]["ip"]
    differing = [k for k in want if got[k] != want[k]]
    assert not differing, [(got[k], want[k]) for k in differing[:3]]
    reasons = {k: want[k]["exclusion_reason"] for k in ("order:ORD-INC-NEW", "order:ORD-INC-DUP", "order:ORD-INC-LATE")}
    assert reasons == {"order:ORD-INC-NEW": None, "order:ORD-INC-DUP": "duplicate_event_id",
                       "order:ORD-INC-LATE": "event_too_old"}


def test_a_failing_gate_stops_the_append_and_blocks_no_later_build(warehouse, tmp_path):
    """A floor above every score makes every value the same: the variance gate on this build's
    batch fails, so nothing is appended (the outbox's history stays clean); once the cause is
    gone, the next build appends the same events."""
    copy = copy_of(warehouse, tmp_path)
    with duckdb.connect(str(copy)) as con:
        # as if nothing had been sent yet
        con.execute(f"delete from {SCHEMA}.tiktok_events_outbox")
    select = ["--select", "int_tiktok_events_candidates+", "--exclude", "resource_type:unit_test", "tag:audit"]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--full-refresh", *select,
         "--vars", "{tiktok_value_floor: 1000000}", "--project-dir", str(PROJECT_ROOT)],
        cwd=PROJECT_ROOT, env=dbt_env(copy), capture_output=True, text=True, check=False,
    )
    assert proc.returncode != 0
    failed = [line for line in proc.stdout.splitlines() if "FAIL" in line]
    assert any("value_varies_int_tiktok_events_outbox_batch" in line for line in failed), proc.stdout[-3000:]
    assert any("SKIP relation" in line and "tiktok_events_outbox " in line for line in proc.stdout.splitlines()), (
        proc.stdout[-3000:])
    assert query(copy, f"select count(*) from {SCHEMA}.tiktok_events_outbox") == [(0,)]
    run_dbt(["build", *select], copy)
    (appended,) = query(copy, f"select count(*) from {SCHEMA}.tiktok_events_outbox")[0]
    assert appended > 1000
