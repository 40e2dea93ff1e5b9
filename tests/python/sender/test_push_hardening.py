"""What a run exposes and where it connects: dump file permissions, proxies only when asked, the
warning for a foreign API host, redaction in every logger, and test pushes that cannot make a
later live push look like duplicates."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from collections import Counter
from pathlib import Path

import pytest
from sender_harness import TOKEN, Project

from tiktok_emulator import EmulatorThread
from tiktok_sender.logs import setup_logging
from tiktok_sender.settings import Secret, unusual_api_host


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_dump_file_is_readable_by_its_owner_only(project: Project, tmp_path: Path) -> None:
    dump = tmp_path / "bodies.jsonl"
    dump.write_text("old")
    dump.chmod(0o644)  # an existing, world-readable file is truncated and locked down
    old_umask = os.umask(0)
    try:
        result = project.sender("push", "--json", "--dump", str(dump))
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert dump.read_bytes().count(b"\n") >= 1 and b"old" not in dump.read_bytes()


def test_proxies_from_the_environment_are_used_only_when_asked(
    project: Project, emulator: EmulatorThread
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    proxies = {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead, "http_proxy": dead}
    direct = project.sender("push", "--json", "--max-attempts", "1", "--limit", "20", env=proxies)
    assert direct.returncode == 0, direct.stderr
    assert direct.json()["delivered"] == 20
    through = project.sender("push", "--json", "--max-attempts", "1", "--use-env-proxy",
                             "--limit", "20", env=proxies)
    assert through.returncode == 1  # the dead proxy: nothing reached the API
    assert through.json()["delivered"] == 0 and len(emulator.events()) == 20
    explicit = project.sender("push", "--json", "--max-attempts", "1", "--proxy", dead,
                              "--limit", "20")
    assert explicit.returncode == 1 and explicit.json()["delivered"] == 0
    both = project.sender("push", "--proxy", dead, "--use-env-proxy")
    assert both.returncode == 4 and "exclude each other" in both.stderr


@pytest.mark.parametrize(("url", "warned"), [
    ("https://business-api.tiktok.com/open_api/v1.3/event/track/", None),
    ("https://BUSINESS-API.TIKTOK.COM./open_api/v1.3/event/track/", None),
    ("http://127.0.0.1:8765/open_api/v1.3/event/track/", None),
    ("http://localhost/open_api/v1.3/event/track/", None),
    ("https://tiktok.com.collector.example/track/", "tiktok.com.collector.example"),
    ("https://eventsproxy.example.com/track/", "eventsproxy.example.com"),
])
def test_a_foreign_api_host_is_named(url: str, warned: str | None) -> None:
    assert unusual_api_host(url) == warned


def test_every_logger_the_run_writes_through_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(False, Secret(TOKEN))
    try:
        logging.getLogger("httpx").warning("HTTP Request: POST https://x/?t=%s", TOKEN)
        try:
            raise RuntimeError(f"connection to host failed, header Access-Token: {TOKEN}")
        except RuntimeError:
            logging.getLogger("asyncio").exception("Task exception was never retrieved")
        logging.getLogger("tiktok_sender").info("token %s", TOKEN)
        loop = asyncio.new_event_loop()
        try:
            loop.call_exception_handler({"message": f"unclosed transport {TOKEN}"})
        finally:
            loop.close()
    finally:
        logging.getLogger().handlers.clear()
    err = capsys.readouterr().err
    assert TOKEN[:8] not in err
    assert err.count("***") >= 4 and "RuntimeError" in err


def test_a_test_push_sends_ids_of_its_own_so_the_live_push_is_not_a_duplicate(
    project: Project, emulator: EmulatorThread
) -> None:
    test = project.sender("push", "--json", "--test-event-code", "TEST42")
    assert test.returncode == 0, test.stderr
    sent = {e["payload"]["event_id"] for e in emulator.events()}
    assert len(sent) == 200 and all(i.endswith("~test-TEST42") for i in sent)
    receipts = project.outbox.receipts("test_event_code = 'TEST42'")
    assert {r["event_id"] for r in receipts} == {i.removesuffix("~test-TEST42") for i in sent}

    live = project.sender("push", "--json")
    assert live.returncode == 0 and live.json()["delivered"] == 200
    live_ids = [e["payload"]["event_id"] for e in emulator.events() if e["test_event_code"] is None]
    assert len(live_ids) == 200 and not any("~test" in i for i in live_ids)
    assert Counter(e["receive_count"] for e in emulator.events()) == {1: 400}  # no duplicate


def test_a_row_with_a_null_key_gets_one_receipt_once(project: Project) -> None:
    project.outbox.execute(
        "update tiktok.tiktok_events_outbox set event_id = null where event_id = 'evt-00000005'")
    first = project.sender("push", "--json")
    assert first.returncode == 1 and first.json()["rejected"] == 1
    (receipt,) = project.outbox.receipts("event_id is null")
    assert receipt["status"] == "rejected" and receipt["api_message"] == "not sent: event_id is missing"
    assert receipt["row_fingerprint"] and len(receipt["row_fingerprint"]) == 64
    again = project.sender("push", "--json")
    assert again.returncode == 0 and again.json()["pending"] == 0 and again.json()["rejected"] == 0
    assert len(project.outbox.receipts("event_id is null")) == 1
    # a changed row is a new row: it gets a receipt of its own
    project.outbox.execute(
        "update tiktok.tiktok_events_outbox set value = 1.5 where event_id is null")
    assert project.sender("push", "--json").json()["rejected"] == 1
    assert len(project.outbox.receipts("event_id is null")) == 2


def test_an_outbox_column_of_another_type_is_one_line_and_exit_4(project: Project) -> None:
    project.outbox.execute(
        "alter table tiktok.tiktok_events_outbox alter event_time type timestamp "
        "using to_timestamp(event_time)")
    result = project.sender("push", "--json")
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "event_time" in result.stderr
