"""The dbt project on messy first-party data, then `sender push` on what it built.

fixtures/messy_first_party.sql appends rows (ids MX-...) to the demo source tables: unicode and
malformed emails, phones in many national formats, missing and unknown countries, negative, NaN,
infinite and huge values, unknown currencies, future and very old timestamps, duplicated and
null ids, an id holding SQL. The build must pass with every data test; each messy conversion is
either normalised into the outbox or excluded with its reason; no raw email or phone reaches the
outbox, the receipts or the runs table.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest

from dbt_harness import PROJECT_ROOT, dbt_env, raw_identifiers, run_dbt

SCHEMA = "tiktok"
SOURCE = "raw_first_party"
FIXTURE = Path(__file__).parent / "fixtures" / "messy_first_party.sql"
TOKEN = "messy-data-token-5e1f"
EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]{2,}")
HEX64 = re.compile(r"[0-9a-f]{64}")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("messy") / "warehouse.duckdb"
    subprocess.run(
        [sys.executable, "scripts/generate_demo_data.py", "--out", "seeds/demo"],
        cwd=PROJECT_ROOT, env=dbt_env(path), check=True, capture_output=True,
    )
    run_dbt(["seed"], path)
    with duckdb.connect(str(path)) as con:
        con.execute(FIXTURE.read_text(encoding="utf-8"))
    # Everything the outbox and the exclusions depend on, with every data and unit test.
    run_dbt(["build", "--select", "+tiktok_events_outbox", "+tiktok_events_excluded",
             "--exclude", "resource_type:seed"], path)
    return path


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def where_is(path: Path, conversion_id: str) -> str:
    """'outbox' or the exclusion reason of a conversion (fails when it is in neither)."""
    if query(path, f"select 1 from {SCHEMA}.tiktok_events_outbox where conversion_id = ?", [conversion_id]):
        return "outbox"
    rows = query(path, f"select exclusion_reason from {SCHEMA}.tiktok_events_excluded where conversion_id = ?",
                 [conversion_id])
    assert len(rows) == 1 and rows[0][0], f"{conversion_id} is neither outboxed nor excluded: {rows}"
    return rows[0][0]


def identity(path: Path, customer_id: str) -> tuple[str | None, str | None, str | None]:
    ((email, phone, external),) = query(
        path, f"select email_sha256, phone_sha256, external_id_sha256 from {SCHEMA}.int_customer_identities "
        "where customer_id = ?", [customer_id])
    return email, phone, external


def test_every_messy_conversion_is_outboxed_or_excluded_with_its_reason(warehouse):
    # conversion -> (where it goes in the treatment cell, in the holdout cell): the holdout sends
    # the observed value, so a broken score only matters in treatment.
    expected = {
        "order:MX-O01": ("invalid_value", "outbox"),  # NaN score
        "order:MX-O02": ("invalid_value", "outbox"),  # infinite score
        "order:MX-O03": ("invalid_currency", "invalid_currency"),
        "order:MX-O04": ("invalid_value", "outbox"),  # negative score; negative revenue sends no value
        "order:MX-O05": ("outbox", "invalid_value"),  # 1e300 score is capped; revenue 1e16 is not a value
        "order:MX-O06": ("event_in_future", "event_in_future"),
        "order:MX-O07": ("event_too_old", "event_too_old"),
        "order:MX-O08": ("event_too_old", "event_too_old"),
        "order:MX-O09": ("outbox", "outbox"),  # no email or phone, but the customer id is a key
        "order:MX-O17'; drop table raw_first_party.orders; --": ("outbox", "outbox"),
        "app_event:mx-app-3": ("event_in_future", "event_in_future"),
    }
    cells = dict(query(warehouse, f"select conversion_id, experiment_cell from {SCHEMA}.int_tiktok_events_candidates"))
    for conversion_id, (treatment, holdout) in expected.items():
        want = holdout if cells[conversion_id] == "holdout" else treatment
        assert where_is(warehouse, conversion_id) == want, (conversion_id, cells[conversion_id])
    capped = query(warehouse, f"select value, is_value_capped from {SCHEMA}.tiktok_events_outbox "
                              "where conversion_id = 'order:MX-O05'")
    assert not capped or (capped[0][1] and capped[0][0] < 1e6)
    # a guest order with no key at all: excluded
    assert where_is(warehouse, "order:MX-O15") in ("outbox", "no_match_key")
    # every messy conversion lands somewhere, exactly once
    ids = [c for (c,) in query(warehouse, f"select conversion_id from {SCHEMA}.int_conversions "
                                          "where conversion_id like '%MX-%' or conversion_id like '%mx-%'")]
    assert len(ids) == len(set(ids)) > 20
    for conversion_id in ids:
        where_is(warehouse, conversion_id)


def test_duplicated_and_null_ids(warehouse):
    # a duplicated key keeps one row (the newest); a null key is dropped, never sent
    ((n,),) = query(warehouse, f"select count(*) from {SCHEMA}.int_conversions where conversion_id = 'order:MX-O10'")
    assert n == 1
    ((value,),) = query(warehouse, f"select observed_value from {SCHEMA}.int_tiktok_events_candidates "
                                   "where conversion_id = 'order:MX-O10'")
    assert value is not None and value > 0
    assert identity(warehouse, "MX-C10")[0] == sha("new.address@example.com")
    for table in ("int_conversions", "tiktok_events_outbox", "tiktok_events_excluded"):
        ((nulls,),) = query(warehouse, f"select count(*) from {SCHEMA}.{table} where conversion_id is null "
                                       "or conversion_id in ('order:', 'signup:', 'app_event:')")
        assert nulls == 0, table
    ((subs,),) = query(warehouse, f"select count(*) from {SCHEMA}.int_conversions "
                                  "where conversion_id = 'app_event:mx-app-1'")
    assert subs == 1  # a subscription loaded twice does not duplicate its conversion
    pixel = query(warehouse, f"select conversion_id from {SCHEMA}.tiktok_events_outbox where event_id = 'mx-pixel-dup'")
    assert len(pixel) == 1  # two conversions sharing a pixel event id: one is sent


def test_identities_are_normalised(warehouse):
    assert identity(warehouse, "MX-C01")[:2] == (sha("josé.álvarez@ejemplo.es"), sha("+34612345678"))
    assert identity(warehouse, "MX-C02")[:2] == (None, sha("+14155550132"))
    assert identity(warehouse, "MX-C03")[:2] == (None, None)  # no TLD; national number, no country
    assert identity(warehouse, "MX-C04")[:2] == (None, sha("+442079460018"))
    assert identity(warehouse, "MX-C05")[:2] == (sha("üser@example.de"), sha("+4930123456789"))
    assert identity(warehouse, "MX-C06")[:2] == (None, None)
    assert identity(warehouse, "MX-C07")[:2] == (None, sha("+390612345678"))
    assert identity(warehouse, "MX-C08")[:2] == (
        "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514", sha("+81312345678"))
    assert identity(warehouse, "MX-C09") == (None, None, sha("mx-c09"))
    assert identity(warehouse, "MX-C13")[1] is None
    assert identity(warehouse, "MX-C14")[1] == sha("+5511912345678")


def test_the_outbox_stays_within_its_contract(warehouse):
    rows = query(warehouse, f"select value, currency, event_time, event_id from {SCHEMA}.tiktok_events_outbox")
    assert rows
    for value, currency, event_time, event_id in rows:
        assert value is None or (0 <= value < 1e15 and value == value), value
        assert (value is None) == (currency is None)
        assert event_time > 0 and event_id




def text_values(path: Path, tables: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for table in tables:
        columns = query(path, "select column_name from information_schema.columns where table_schema = ? "
                              "and table_name = ? and data_type = 'VARCHAR'", [SCHEMA, table])
        assert columns, table
        for (column,) in columns:
            out[f"{table}.{column}"] = {
                v for (v,) in query(path, f'select distinct "{column}" from {SCHEMA}."{table}"') if v}
    return out


def expired_ids(db: Path) -> set[str]:
    return {i for (i,) in query(db, f"select event_id from {SCHEMA}.tiktok_delivery_receipts where status = 'expired'")}


def test_sender_delivers_the_messy_outbox_without_leaking_pii(warehouse, tmp_path):
    from tiktok_emulator import EmulatorThread
    from tiktok_sender.settings import Secret

    db = tmp_path / warehouse.name  # same file name: DuckDB views name their catalog after it
    db.write_bytes(warehouse.read_bytes())
    env = {**dbt_env(db), "TIKTOK_ACCESS_TOKEN": TOKEN, "TIKTOK_BACKOFF_BASE": "0.01"}
    sender = Path(sys.executable).parent / "sender"
    with EmulatorThread(token=Secret(TOKEN)) as emulator:
        env["TIKTOK_API_URL"] = emulator.url
        proc = subprocess.run([str(sender), "push", "--json"], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, check=False, timeout=120)
        accepted = emulator.events()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = orjson.loads(proc.stdout)
    ((outbox,),) = query(db, f"select count(*) from {SCHEMA}.tiktok_events_outbox")
    assert summary["delivered"] + summary["expired"] == outbox and summary["rejected"] == 0
    assert len(accepted) == summary["delivered"]
    sent_ids = {e["payload"]["event_id"] for e in accepted}
    outboxed = {i for (i,) in query(db, f"select event_id from {SCHEMA}.tiktok_events_outbox")}
    assert sent_ids == outboxed - expired_ids(db), (sorted(outboxed - sent_ids)[:5], summary["problems"])
    assert "mx-pixel-dup" in sent_ids and "purchase-MX-O17'; drop table raw_first_party.orders; --" in sent_ids

    pii = raw_identifiers(db)
    assert {"José.Álvarez@Ejemplo.ES".strip(), "+34612345678", "o'brien@example.ie"} <= pii
    values = text_values(db, ["tiktok_events_outbox", "tiktok_delivery_receipts", "tiktok_delivery_runs"])
    assert len(values) > 25
    for column, found in values.items():
        leaked = found & pii
        assert not leaked, f"{column} holds raw identifiers, e.g. {sorted(leaked)[:3]}"
        emails = [v for v in found if EMAIL_LIKE.search(v)]
        assert not emails, f"{column} holds email-like values, e.g. {emails[:3]}"
        assert not any(TOKEN in v for v in found), column
    payloads = orjson.dumps([e["payload"] for e in accepted]).decode()
    assert not any(p in payloads for p in pii if "@" in p or p.startswith("+"))
    assert os.environ.get("TIKTOK_ACCESS_TOKEN") != TOKEN
