"""End to end: the real `sender` CLI in a subprocess, a real DuckDB file, the emulator on
127.0.0.1. No mocks."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sender_harness import APP_ID, PIXEL, TOKEN, Project

from tiktok_emulator import EmulatorThread
from tiktok_emulator.validate import validate_body
from tiktok_sender.tables.receipts import RECEIPT_COLUMNS

TERMINAL = ("delivered", "rejected", "expired")


def final_status(project: Project) -> dict[str, str]:
    """event_id -> the event's status as `sender status` defines it (production receipts)."""
    rows = project.outbox.execute(
        "select event_id, list(status) from tiktok.tiktok_delivery_receipts "
        "where test_event_code is null group by event_id"
    )
    out = {}
    for event_id, statuses in rows:
        for status in ("delivered", "rejected", "expired", "failed"):
            if status in statuses:
                out[event_id] = status
                break
    return out


def test_push_delivers_every_event_once_with_valid_payloads(
    project: Project, emulator: EmulatorThread
) -> None:
    result = project.sender("push", "--json", "--batch-size", "64")
    assert result.returncode == 0, result.stderr
    summary = result.json()
    assert summary["outcome"] == "success"
    assert (summary["pending"], summary["sent"], summary["delivered"]) == (200, 200, 200)
    assert summary["requests"] == 4  # 150 web + 50 app in batches of 64

    accepted = emulator.events()
    assert len(accepted) == 200
    assert all(e["receive_count"] == 1 for e in accepted)
    assert emulator.stats()["duplicates"] == 0
    outbox_ids = {r[0] for r in project.outbox.execute("select event_id from tiktok.tiktok_events_outbox")}
    assert {e["payload"]["event_id"] for e in accepted} == outbox_ids
    for e in accepted:  # every stored event passes the contract checks again on its own
        validate_body({"event_source": e["event_source"], "event_source_id": e["event_source_id"],
                       "data": [e["payload"]]})
        assert isinstance(e["payload"]["event_id"], str)
        assert isinstance(e["payload"]["event_time"], int)
        assert None not in e["payload"].get("user", {}).values()
    sources = Counter((e["event_source"], e["event_source_id"]) for e in accepted)
    assert sources == {("web", PIXEL): 150, ("app", APP_ID): 50}

    receipts = project.outbox.receipts()
    assert len(receipts) == 200
    assert {r["status"] for r in receipts} == {"delivered"}
    by_id = {r["event_id"]: r for r in receipts}
    for e in accepted:  # the receipt's hash is the hash of exactly what the API received
        receipt = by_id[e["payload"]["event_id"]]
        assert receipt["payload_sha256"] == hashlib.sha256(orjson.dumps(e["payload"])).hexdigest()
        assert receipt["attempt"] == 1 and receipt["api_code"] == 0 and receipt["http_status"] == 200
        assert receipt["request_id"].startswith("emu")
        assert receipt["event_source_id"] == e["event_source_id"]
    holdout = project.outbox.execute(
        "select count(*) from tiktok.tiktok_delivery_receipts where experiment_cell = 'holdout'")
    assert holdout == [(40,)]

    columns = project.outbox.execute(
        "select column_name from information_schema.columns "
        "where table_name = 'tiktok_delivery_receipts' order by ordinal_position")
    assert [c[0] for c in columns] == [c.name for c in RECEIPT_COLUMNS]
    (run,) = project.outbox.runs()
    assert (run["outcome"], run["delivered"], run["requests"], run["dry_run"]) == ("success", 200, 4, False)

    again = project.sender("push", "--json")
    assert again.returncode == 0, again.stderr
    assert again.json()["pending"] == 0 and again.json()["requests"] == 0
    assert emulator.stats()["track_requests"] == 4
    assert len(project.outbox.receipts()) == 200


def test_one_bad_event_in_a_batch_of_1000_costs_only_that_event(
    project: Project, emulator: EmulatorThread
) -> None:
    project.outbox.add(1000, start=200)
    web_ids = [r[0] for r in project.outbox.execute(
        "select event_id from tiktok.tiktok_events_outbox where event_source = 'web' "
        "order by event_id")]
    bad_index, bad_noindex = web_ids[17], web_ids[600]
    emulator.set_faults(f"reject={bad_index},reject_noindex={bad_noindex}")
    result = project.sender("push", "--json", "--concurrency", "1")
    assert result.returncode == 1, result.stderr  # rejections exceed the default rate of 0
    summary = result.json()
    assert (summary["delivered"], summary["rejected"], summary["failed"]) == (1198, 2, 0)
    accepted_ids = {e["payload"]["event_id"] for e in emulator.events()}
    assert len(accepted_ids) == 1198 and not accepted_ids & {bad_index, bad_noindex}
    status = final_status(project)
    assert status[bad_index] == "rejected" and status[bad_noindex] == "rejected"
    assert Counter(status.values()) == {"delivered": 1198, "rejected": 2}
    named = project.outbox.receipts(f"event_id = '{bad_index}' and status = 'rejected'")
    assert named[0]["api_code"] == 40002 and "event_id" in named[0]["api_message"]

    tolerant = project.sender("push", "--json", "--max-failure-rate", "0.01")
    assert tolerant.returncode == 0 and tolerant.json()["pending"] == 0  # rejected stay rejected

    emulator.set_faults("")
    retried = project.sender("push", "--json", "--retry-rejected")
    assert retried.returncode == 0, retried.stderr
    assert (retried.json()["pending"], retried.json()["delivered"]) == (2, 2)
    assert Counter(final_status(project).values()) == {"delivered": 1200}


def test_throttling_429_5xx_timeouts_and_resets_are_survived(
    project: Project, emulator: EmulatorThread
) -> None:
    emulator.set_faults(
        "throttle=0.25,http429=0.15,http5xx=0.15,sys_error=0.1,drop=0.1,timeout=0.05,"
        "hang=2,retry_after=0.05", seed=3)
    result = project.sender("push", "--json", "--batch-size", "10", "--max-attempts", "12",
                            "--timeout", "0.5")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.json()
    assert summary["delivered"] == 200 and summary["failed"] == 0
    stats = emulator.stats()
    injected = stats["faults_injected"]
    assert {"throttle", "http429", "http5xx", "sys_error", "drop"} <= set(injected)
    assert summary["requests"] == stats["track_requests"] > 20
    accepted = emulator.events()
    assert len(accepted) == 200 and all(e["receive_count"] == 1 for e in accepted)
    receipts = project.outbox.receipts()
    assert {r["status"] for r in receipts} == {"delivered", "failed"}
    failed_codes = {(r["http_status"], r["api_code"]) for r in receipts if r["status"] == "failed"}
    assert {(200, 40100), (429, None), (503, None), (200, 50000), (None, None)} <= failed_codes
    assert Counter(final_status(project).values()) == {"delivered": 200}


def test_failed_events_are_sent_again_by_the_next_run(
    project: Project, emulator: EmulatorThread
) -> None:
    emulator.set_faults("http5xx=1")
    first = project.sender("push", "--json", "--max-attempts", "2")
    assert first.returncode == 1
    # an outage: after its attempts, a batch is split once into halves and quarters; when they
    # all fail too, its source stops for the run (held), instead of splitting to single events
    summary = first.json()
    assert (summary["failed"] + summary["held"], summary["delivered"]) == (200, 0)
    assert summary["stopped_sources"] and all(
        "failed the same way" in s["reason"] for s in summary["stopped_sources"])
    assert Counter(final_status(project).values()) == {"failed": 200}
    status = project.sender("status", "--json")
    assert status.json()["pending"] == 200 and status.json()["failed"] == 200
    assert status.json()["top_errors"][0]["status"] == "failed"

    emulator.set_faults("")
    second = project.sender("push", "--json")
    assert second.returncode == 0, second.stderr
    assert (second.json()["pending"], second.json()["delivered"]) == (200, 200)
    assert len(emulator.events()) == 200
    assert Counter(final_status(project).values()) == {"delivered": 200}


def test_invalid_token_stops_the_run_with_exit_3(project: Project, emulator: EmulatorThread) -> None:
    result = project.sender("push", env={"TIKTOK_ACCESS_TOKEN": "wrong-token"})
    assert result.returncode == 3
    assert "40105" in result.stderr and "TIKTOK_ACCESS_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
    assert emulator.events() == []
    (run,) = project.outbox.runs()
    assert run["outcome"] == "auth_error" and "40105" in run["message"]
    assert {r["status"] for r in project.outbox.receipts()} == {"failed"}  # still pending

    revoked = project.sender("push", "--json", "--concurrency", "1", "--batch-size", "50")
    assert revoked.returncode == 0
    emulator.reset()
    emulator.set_faults("revoke_after=2")
    project.outbox.add(200, start=200)
    stopped = project.sender("push", "--json", "--concurrency", "1", "--batch-size", "50")
    assert stopped.returncode == 3
    assert stopped.json()["delivered"] == 100  # what was done before the revocation is kept
    assert len(project.outbox.receipts("status = 'delivered'")) == 300


def test_token_never_leaks(project: Project, emulator: EmulatorThread, tmp_path: Path) -> None:
    emulator.set_faults("throttle=0.2,http5xx=0.1,reject=evt-00000004,retry_after=0.01", seed=1)
    revoked = project.sender("push", env={"TIKTOK_ACCESS_TOKEN": TOKEN + "x"})
    assert revoked.returncode == 3
    dump = tmp_path / "bodies.jsonl"
    outputs = [
        revoked,
        project.sender("push", env={"TIKTOK_API_URL": "ftp://example.com/" + TOKEN}),
        project.sender("push", env={"TIKTOK_API_URL": emulator.url + "?access_token=" + TOKEN}),
        project.sender("-v", "push", "--dump", str(dump), "--batch-size", "25"),
        project.sender("push", "--json", "--dry-run", "--dump", str(tmp_path / "dry.jsonl"),
                       "--retry-rejected"),
        project.sender("status"),
        project.sender("status", "--json"),
    ]
    assert [o.returncode for o in outputs] == [3, 4, 4, 1, 0, 0, 0]
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    outputs.append(project.sender("push", "--token-file", str(token_file), "--json",
                                  env={"TIKTOK_ACCESS_TOKEN": None}))
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    for out in outputs:
        assert TOKEN not in out.stdout and TOKEN not in out.stderr
    for path in (dump, tmp_path / "dry.jsonl"):
        assert path.stat().st_size > 0 and TOKEN.encode() not in path.read_bytes()
    assert TOKEN not in project.outbox.all_text()
    assert len(project.outbox.runs()) >= 4


def test_dry_run_sends_nothing_and_writes_no_receipts(
    project: Project, emulator: EmulatorThread, tmp_path: Path
) -> None:
    project.outbox.execute(
        "update tiktok.tiktok_events_outbox set email_sha256 = 'someone@example.com' "
        "where event_id = 'evt-00000003'")
    dump = tmp_path / "bodies.jsonl"
    result = project.sender("push", "--dry-run", "--dump", str(dump), "--json",
                            env={"TIKTOK_ACCESS_TOKEN": None})
    assert result.returncode == 1, result.stderr  # one invalid row
    summary = result.json()
    assert (summary["sent"], summary["rejected"], summary["delivered"]) == (199, 1, 0)
    assert "email_sha256" in summary["problems"][0]["message"]
    bodies = [orjson.loads(line) for line in dump.read_bytes().splitlines()]
    assert sum(len(b["data"]) for b in bodies) == 199 == summary["sent"]
    for b in bodies:
        validate_body(b)
    assert emulator.stats()["requests"] == 0
    assert project.outbox.receipts() == []
    (run,) = project.outbox.runs()
    assert run["dry_run"] is True
    text = project.sender("push", "--dry-run", env={"TIKTOK_ACCESS_TOKEN": None})
    assert "would send" in text.stdout and "email_sha256" in text.stdout


def test_invalid_hash_is_rejected_locally_and_never_sent(
    project: Project, emulator: EmulatorThread
) -> None:
    project.outbox.execute(
        "update tiktok.tiktok_events_outbox set phone_sha256 = upper(phone_sha256) "
        "where event_id = 'evt-00000010'")
    result = project.sender("push", "--json")
    assert result.returncode == 1
    assert (result.json()["delivered"], result.json()["rejected"]) == (199, 1)
    assert "evt-00000010" not in {e["payload"]["event_id"] for e in emulator.events()}
    (receipt,) = project.outbox.receipts("event_id = 'evt-00000010'")
    assert receipt["status"] == "rejected" and receipt["http_status"] is None
    assert "phone_sha256" in receipt["api_message"]
    assert project.sender("push", "--json").json()["pending"] == 0


def test_old_events_expire_instead_of_being_sent(
    project: Project, emulator: EmulatorThread
) -> None:
    project.outbox.execute(
        "update tiktok.tiktok_events_outbox set event_time = event_time - 30 * 86400 "
        "where event_id in ('evt-00000001', 'evt-00000002')")
    result = project.sender("push", "--json")
    assert result.returncode == 0, result.stderr  # expiry is policy, not failure
    assert (result.json()["delivered"], result.json()["expired"]) == (198, 2)
    assert len(emulator.events()) == 198
    assert {r["status"] for r in project.outbox.receipts("event_id = 'evt-00000001'")} == {"expired"}
    assert project.sender("push", "--json", "--max-age-days", "60").json()["pending"] == 0
    assert project.sender("status", "--json").json()["expired"] == 2


def test_test_event_code_receipts_do_not_count_as_production(
    project: Project, emulator: EmulatorThread
) -> None:
    trial = project.sender("push", "--json", "--limit", "20", "--test-event-code", "TEST123")
    assert trial.returncode == 0, trial.stderr
    assert (trial.json()["pending"], trial.json()["delivered"]) == (20, 20)
    accepted = emulator.events()
    assert len(accepted) == 20 and {e["test_event_code"] for e in accepted} == {"TEST123"}
    receipts = project.outbox.receipts()
    assert {r["test_event_code"] for r in receipts} == {"TEST123"}
    status = project.sender("status", "--json").json()
    assert (status["pending"], status["delivered"], status["test_events"]) == (200, 0, 20)

    emulator.reset()
    live = project.sender("push", "--json")
    assert (live.json()["pending"], live.json()["delivered"]) == (200, 200)
    assert {e["test_event_code"] for e in emulator.events()} == {None}


def test_sigterm_stops_cleanly_and_keeps_receipts(
    project: Project, emulator: EmulatorThread
) -> None:
    import signal
    import subprocess
    import time

    from sender_harness import SENDER

    project.outbox.add(800, start=200)
    emulator.set_faults("latency_ms=150")
    proc = subprocess.Popen(
        [str(SENDER), "push", "--json", "--batch-size", "20", "--concurrency", "2"],
        cwd=project.root, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 20
    while emulator.stats()["track_requests"] < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    summary = orjson.loads(stdout)
    assert summary["outcome"] == "interrupted" and 0 < summary["delivered"] < 1000
    (run,) = project.outbox.runs()
    assert run["outcome"] == "interrupted" and run["finished_at"] is not None
    delivered = project.outbox.receipts("status = 'delivered'")
    assert len(delivered) == summary["delivered"]
    accepted = {e["payload"]["event_id"] for e in emulator.events()}
    assert {r["event_id"] for r in delivered} <= accepted  # requests in flight may be repeated

    emulator.set_faults("")
    rest = project.sender("push", "--json")
    assert rest.returncode == 0, rest.stderr
    assert rest.json()["delivered"] == 1000 - summary["delivered"]
    assert all(e["receive_count"] <= 2 for e in emulator.events())
    assert len(emulator.events()) == 1000


def test_a_replayed_clock_stamps_receipts_and_judges_age_at_its_instant(
    project: Project, emulator: EmulatorThread
) -> None:
    """`--clock-start` replays a past instant (make demo's schedule): event age, receipts and the
    run row follow it, and the run says so in its log and its settings."""
    start = (datetime.now(UTC) - timedelta(days=10)).replace(tzinfo=None, microsecond=0)
    project.outbox.execute(  # 35 days old now, 25 days old at the replayed instant
        "update tiktok.tiktok_events_outbox set event_time = event_time - 35 * 86400 "
        "where event_id in ('evt-00000001', 'evt-00000002')")
    result = project.sender("push", "--json", "--clock-start", start.isoformat(sep=" "))
    assert result.returncode == 0, result.stderr
    assert (result.json()["delivered"], result.json()["expired"]) == (200, 0)
    assert f"replay: the run's clock starts at {start.isoformat(sep=' ')} UTC" in result.stderr
    for receipt in project.outbox.receipts():
        assert start <= receipt["sent_at"] <= start + timedelta(minutes=5)
        assert start <= receipt["acknowledged_at"] <= start + timedelta(minutes=5)
    (run,) = project.outbox.runs()
    assert start <= run["started_at"] <= run["finished_at"] <= start + timedelta(minutes=5)
    assert orjson.loads(run["settings"])["clock_start"] == start.isoformat()

    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    refused = project.sender("push", "--clock-start", future)
    assert refused.returncode == 4  # a configuration error, as for every other setting
    assert "--clock-start must not be in the future" in refused.stderr
    assert "Traceback" not in refused.stderr
