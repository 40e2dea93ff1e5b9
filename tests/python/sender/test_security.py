"""Secrets and hostile input: an API that echoes the token into long error messages, row data
that looks like SQL, and every place text leaves the sender."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pg_harness import make_pg_outbox, pg_target
from sender_harness import TOKEN, Project

from tiktok_emulator import EmulatorThread
from tiktok_sender.errors import WarehouseError
from tiktok_sender.tables.receipts import API_MESSAGE_MAX
from tiktok_sender.warehouse import open_warehouse
from tiktok_sender.warehouse.postgres import connection_uri

pytest_plugins = ["pg_fixtures"]


@pytest.mark.parametrize("length", [215, 510, 3000])
def test_token_echoed_by_the_api_is_redacted_and_messages_are_truncated(
    project: Project, emulator: EmulatorThread, tmp_path: Path, length: int
) -> None:
    """The API echoes the token at the end of error messages of `length` characters: 215 and 510
    put it across the 200-character cut of log lines and the 500-character cut of receipts."""
    emulator.set_faults(
        f"verbose_errors={length},throttle=0.2,sys_error=0.2,reject=evt-00000004|evt-00000009,"
        "reject_noindex=evt-00000013,retry_after=0.01", seed=2)
    dump = tmp_path / "bodies.jsonl"
    # A batch split to isolate the event without an index keeps its transient-retry count, and at
    # 40% throttle + 5xx per request 10 attempts ran out about once in seven runs: 20 cannot.
    first = project.sender("-v", "push", "--json", "--batch-size", "20", "--max-attempts", "20",
                           "--dump", str(dump))
    assert first.returncode == 1, first.stderr  # three rejected events
    assert first.json()["rejected"] == 3 and first.json()["delivered"] == 197
    emulator.set_faults(f"verbose_errors={length},revoke_after=0")
    project.outbox.add(20, start=200)
    revoked = project.sender("-v", "push", "--json")
    assert revoked.returncode == 3
    outputs = [first, revoked, project.sender("status"), project.sender("status", "--json")]

    receipts = project.outbox.receipts("status <> 'delivered'")
    messages = [r["api_message"] for r in receipts if r["api_message"]]
    if length <= 510:  # the echo survives the 500-character cut once redacted
        assert any("Access-Token=***" in m for m in messages)
    assert all(len(m) <= API_MESSAGE_MAX for m in messages)
    if length > API_MESSAGE_MAX + len(TOKEN):
        assert max(len(m) for m in messages) == API_MESSAGE_MAX
    runs = project.outbox.runs()
    assert runs[-1]["outcome"] == "auth_error" and len(runs[-1]["message"]) <= API_MESSAGE_MAX
    piece = TOKEN[:8]  # not even a piece of it survives a cut
    for out in outputs:
        assert piece not in out.stdout and piece not in out.stderr
        assert "Traceback" not in out.stderr
    if length <= 215:  # debug log lines keep 200 characters of the message
        assert "Access-Token=***" in first.stderr
    assert piece.encode() not in dump.read_bytes()
    assert piece not in project.outbox.all_text()
    assert piece not in str(orjson.loads(revoked.stdout))


def test_row_data_never_becomes_sql(project: Project, emulator: EmulatorThread) -> None:
    hostile = [
        "o'brien-1",
        "x'); drop table tiktok.tiktok_delivery_receipts; --",
        'quote"d',
        "ünïcødé-☃-订单",
        "semi;colon -- comment /* block */",
    ]
    for i, event_id in enumerate(hostile):
        project.outbox.execute(
            "update tiktok.tiktok_events_outbox set event_id = ?, order_id = ? where event_id = ?",
            [event_id, event_id, f"evt-{i:08d}"],
        )
    result = project.sender("push", "--json")
    assert result.returncode == 0, result.stderr
    assert result.json()["delivered"] == 200
    accepted = {e["payload"]["event_id"] for e in emulator.events()}
    assert set(hostile) <= accepted
    receipts = {r["event_id"] for r in project.outbox.receipts()}
    assert set(hostile) <= receipts and len(receipts) == 200
    again = project.sender("push", "--json")  # the anti-join matches them exactly
    assert again.json()["pending"] == 0
    assert project.sender("status", "--json").json()["delivered"] == 200


def test_the_postgres_uri_carries_the_password_and_shows_it_nowhere(
    postgres_cluster, tmp_path: Path
) -> None:
    """The libpq URI built from the profile holds the password (percent-encoded, whatever its
    characters) but is a Secret: no repr, message or warehouse attribute shows it."""
    password = "p@ss:w/rd?&='\"% SECRETpw ☃"
    role = postgres_cluster.create_password_role("sender_uri_user", password)
    outbox = make_pg_outbox(postgres_cluster, 3)
    try:
        target = pg_target(tmp_path, postgres_cluster, outbox.dbname, TIKTOK_PG_USER=role,
                           TIKTOK_PG_PASSWORD=password)
        uri = connection_uri(target, "app, name")
        shown = [repr(uri), str(uri), f"{uri}", repr(target), target.describe()]
        assert all("SECRETpw" not in text for text in shown)
        assert "SECRETpw" in uri.reveal() and password not in uri.reveal()  # encoded, not raw
        warehouse = open_warehouse(target)  # libpq reads the encoded password back
        try:
            assert warehouse.count_pending(warehouse.plan_pending(("delivered",), None)) == 3
            assert "SECRETpw" not in repr(vars(warehouse))
        finally:
            warehouse.close()
        wrong = pg_target(tmp_path, postgres_cluster, outbox.dbname, TIKTOK_PG_USER=role,
                          TIKTOK_PG_PASSWORD=password + "-wrong")
        with pytest.raises(WarehouseError) as caught:
            open_warehouse(wrong)
        assert "password authentication failed" in str(caught.value)
        assert "SECRETpw" not in str(caught.value) and "SECRETpw" not in repr(caught.value)
    finally:
        outbox.drop()
