"""Erasure end to end on the demo project: a customer's events are delivered, one more is
outboxed but not sent yet, then the customer asks to be forgotten. `dbt run-operation
tiktok_erase_customers` removes their identifiers from the outbox (the one change the append-only
outbox ever receives), from the receipts' payload digests and from the intermediate tables; the
next build sends nothing new of theirs, and the next push never sends the pending row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from dbt_harness import PROJECT_ROOT, dbt_env, run_dbt
from tiktok_emulator import EmulatorThread
from tiktok_sender.settings import Secret

SCHEMA = "tiktok"
SOURCE = "raw_first_party"
TOKEN = "erasure-test-token"
IDENTIFIERS = ("email_sha256", "phone_sha256", "external_id_sha256", "first_name_sha256",
               "last_name_sha256", "zip_code_sha256", "ttclid", "ttp", "ip", "user_agent", "page_url",
               "idfa", "idfv", "gaid", "city", "state", "country", "locale")


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def execute(path: Path, sql: str, params: list | None = None) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(sql, params or [])


def push(path: Path, emulator: EmulatorThread) -> None:
    env = {**dbt_env(path), "TIKTOK_ACCESS_TOKEN": TOKEN, "TIKTOK_API_URL": emulator.url}
    proc = subprocess.run([str(Path(sys.executable).parent / "sender"), "push"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def erase(path: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "run-operation", "tiktok_erase_customers", *args],
        cwd=PROJECT_ROOT, env=dbt_env(path), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def new_order(path: Path, order_id: str, customer_id: str) -> None:
    execute(path, f"""insert into {SOURCE}.orders select ?, ?, now()::timestamp - interval 2 hour,
                      'completed', 'USD', 120, 0, 100, 0, now()::timestamp""", [order_id, customer_id])
    # its checkout session, so that the order does not wait for it
    execute(path, f"""insert into {SOURCE}.web_sessions (session_id, customer_id, started_at, ip,
                      user_agent, order_id, pixel_event_id)
                      select 'WS-' || ?, ?, now()::timestamp - interval 125 minute, '198.51.100.7',
                             'Mozilla/5.0 Test', ?, ?""", [order_id, customer_id, order_id, order_id])


@pytest.fixture(scope="module")
def erased(demo_warehouse: Path) -> dict:
    path = demo_warehouse
    # a customer whose conversions are sent (no consent needed, none refused), with several
    (customer, sent) = query(path, f"""
        select c.customer_id, count(*) from {SCHEMA}.tiktok_events_outbox o
        join {SCHEMA}.int_conversions c using (conversion_id)
        join {SCHEMA}.int_customer_identities i on i.customer_id = c.customer_id
        where i.country_code = 'US'
          and c.customer_id not in (select customer_id from {SCHEMA}.int_customer_privacy)
        group by 1 having count(*) >= 2 order by 1 limit 1""")[0]
    with EmulatorThread(token=Secret(TOKEN)) as emulator:
        push(path, emulator)
        # one more order, outboxed but not pushed before the request
        new_order(path, "ORD-ERASE-1", customer)
        run_dbt(["run", "--select", "+tiktok_events_outbox"], path)
        assert query(path, f"select count(*) from {SCHEMA}.tiktok_events_outbox "
                           "where conversion_id = 'order:ORD-ERASE-1'") == [(1,)]
        others_before = query(path, f"""select * exclude (is_erased) from {SCHEMA}.tiktok_events_outbox
            where conversion_id not in (select conversion_id from {SCHEMA}.int_conversions where customer_id = ?)
            order by conversion_id""", [customer])
        execute(path, f"insert into {SOURCE}.erasure_requests values (?, now()::timestamp - interval 1 minute)",
                [customer])
        new_order(path, "ORD-ERASE-2", customer)  # after the request
        dry = erase(path, "--args", "{dry_run: true}")
        first = erase(path)
        second = erase(path)
        run_dbt(["run", "--select", "+tiktok_events_outbox", "+tiktok_events_excluded"], path)
        emulator.reset()
        push(path, emulator)
        received = emulator.events()
    return {"path": path, "customer": customer, "sent": sent, "others_before": others_before,
            "logs": (dry, first, second), "received": received}


def customer_rows(path: Path, customer: str, columns: str) -> list[tuple]:
    return query(path, f"""select {columns} from {SCHEMA}.tiktok_events_outbox
        where conversion_id in (select conversion_id from {SCHEMA}.int_conversions where customer_id = ?)""",
                 [customer])


def test_the_customers_outbox_rows_lose_every_identifier(erased):
    rows = customer_rows(erased["path"], erased["customer"], ", ".join(("is_erased", *IDENTIFIERS)))
    assert len(rows) == erased["sent"] + 1  # the pushed ones and the pending one
    assert all(row[0] is True and all(v is None for v in row[1:]) for row in rows)


def test_every_other_outbox_row_is_untouched(erased):
    path = erased["path"]
    after = query(path, f"""select * exclude (is_erased) from {SCHEMA}.tiktok_events_outbox
        where conversion_id not in (select conversion_id from {SCHEMA}.int_conversions where customer_id = ?)
          and conversion_id in (select conversion_id from {SCHEMA}.tiktok_events_outbox where outbox_seq <=
              (select max(outbox_seq) from {SCHEMA}.tiktok_events_outbox where conversion_id = 'order:ORD-ERASE-1'))
        order by conversion_id""", [erased["customer"]])
    assert after == erased["others_before"]
    assert query(path, f"select count(*) from {SCHEMA}.tiktok_events_outbox where is_erased") == [(erased["sent"] + 1,)]


def test_receipts_keep_the_delivery_but_not_the_payload_digest(erased):
    path, customer = erased["path"], erased["customer"]
    receipts = query(path, f"""select r.status, r.payload_sha256 from {SCHEMA}.tiktok_delivery_receipts r
        join {SCHEMA}.tiktok_events_outbox o using (event_source_id, event, event_id)
        where o.conversion_id in (select conversion_id from {SCHEMA}.int_conversions where customer_id = ?)
          and o.conversion_id <> 'order:ORD-ERASE-1'""", [customer])
    assert len(receipts) == erased["sent"]
    assert all(status == "delivered" and digest is None for status, digest in receipts)
    (kept,) = query(path, f"select count(*) from {SCHEMA}.tiktok_delivery_receipts where payload_sha256 is not null")[0]
    assert kept > 1000


def test_the_pending_row_is_never_read_nor_sent(erased):
    path = erased["path"]
    ((event_id,),) = query(path, f"select event_id from {SCHEMA}.tiktok_events_outbox "
                                 "where conversion_id = 'order:ORD-ERASE-1'")
    # the last push sent what the builds appended meanwhile (conversions that settled), not it
    assert event_id not in {e["payload"].get("event_id") for e in erased["received"]}
    assert query(path, f"select count(*) from {SCHEMA}.tiktok_delivery_receipts where event_id = ?",
                 [event_id]) == [(0,)]


def test_later_conversions_are_excluded_and_nothing_is_hashed_again(erased):
    path, customer = erased["path"], erased["customer"]
    assert query(path, f"select exclusion_reason from {SCHEMA}.tiktok_events_excluded "
                       "where conversion_id = 'order:ORD-ERASE-2'") == [("erased",)]
    assert query(path, f"select count(*) from {SCHEMA}.int_customer_identities where customer_id = ?",
                 [customer]) == [(0,)]
    held = query(path, f"select {', '.join(IDENTIFIERS)} from {SCHEMA}.int_tiktok_events_candidates "
                       "where customer_id = ?", [customer])
    assert held and all(v is None for row in held for v in row)


def test_each_run_is_logged_and_a_second_run_changes_nothing(erased):
    dry, first, second = erased["logs"]
    rows = erased["sent"] + 1
    assert f"{rows} outbox row(s) and {erased['sent']} receipt(s) to erase (dry run: nothing changed)" in dry
    assert f"{rows} outbox row(s) and {erased['sent']} receipt(s) to erase" in first
    assert "0 outbox row(s) and 0 receipt(s) to erase" in second
    log = query(erased["path"], f"select dry_run, outbox_rows, receipt_rows from {SCHEMA}.tiktok_erasure_runs "
                                "order by run_at, dry_run desc")
    assert [tuple(r) for r in log] == [(True, rows, erased["sent"]), (False, rows, erased["sent"]), (False, 0, 0)]
