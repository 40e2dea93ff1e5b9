"""The emulator over real HTTP on 127.0.0.1: contract checks, codes, dedup, faults, admin."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sender_harness import TOKEN

from tiktok_emulator import EmulatorThread
from tiktok_emulator.app import EmulatorApp
from tiktok_emulator.faults import FaultInjector, FaultSpec
from tiktok_sender.errors import ConfigError
from tiktok_sender.settings import Secret

H = "a" * 64


def event(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {"event": "Purchase", "event_time": 1_760_000_000 + i, "event_id": f"e{i}",
            "user": {"email": H}, "properties": {"value": 1.5, "currency": "USD"}, **extra}


def request(data: list[Any], source: str = "web", **top: Any) -> dict[str, Any]:
    return {"event_source": source, "event_source_id": "P1", "data": data, **top}


@pytest.fixture
def client(emulator: EmulatorThread) -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Access-Token": TOKEN}, timeout=5) as c:
        yield c


def post(client: httpx.Client, url: str, body: Any) -> dict[str, Any]:
    response = client.post(url, json=body)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_accepts_and_stores_events(emulator: EmulatorThread, client: httpx.Client) -> None:
    answer = post(client, emulator.url, request([event(1), event(2)], test_event_code="T1"))
    assert answer["code"] == 0 and answer["message"] == "OK" and answer["request_id"]
    stored = emulator.events()
    assert [e["payload"]["event_id"] for e in stored] == ["e1", "e2"]
    assert {e["test_event_code"] for e in stored} == {"T1"}
    over_http = client.get(emulator.base_url + "/_emulator/events", params={"limit": 1}).json()
    assert over_http["total"] == 2 and len(over_http["events"]) == 1


def test_token_checks(emulator: EmulatorThread) -> None:
    body = request([event()])
    with httpx.Client() as c:
        assert c.post(emulator.url, json=body).json()["code"] == 40104
        assert c.post(emulator.url, json=body, headers={"Access-Token": "nope"}).json()["code"] == 40105
    assert emulator.events() == []


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (request([event(event_id=3)]), 40002, "data.0.event_id: not a valid string"),
        (request([event(), event(1, event_time="1")]), 40002, "data.1.event_time"),
        (request([event(user={"email": "A" * 64})]), 40002, "data.0.user.email"),
        (request([event(user={"email": "me@example.com"})]), 40062, "data.0.user.email"),
        (request([event(properties={"currency": "XXX"})]), 40002, "data.0.properties.currency"),
        (request([event(properties={"value": "12"})]), 40002, "data.0.properties.value"),
        (request([event(user={"ttclid": None})]), 40002, "data.0.user.ttclid: null"),
        (request([event(event="Checkout")]), 40002, "data.0.event"),
        (request([event(event="InstallApp")], source="app"), 0, "OK"),
        (request([event()], source="email"), 40002, "event_source"),
        (request([event()], event_source_id=""), 40002, "event_source_id"),
        (request([]), 40061, "data"),
        (request([event(i) for i in range(1001)]), 40061, "batch size"),
        ([1, 2], 40000, "JSON object"),
    ],
)
def test_contract_checks(
    emulator: EmulatorThread, client: httpx.Client, body: Any, code: int, message: str
) -> None:
    answer = post(client, emulator.url, body)
    assert answer["code"] == code and message in answer["message"]
    assert len(emulator.events()) == (1 if code == 0 else 0)


def test_other_api_version_and_paths(emulator: EmulatorThread, client: httpx.Client) -> None:
    v12 = emulator.url.replace("v1.3", "v1.2")
    assert post(client, v12, request([event()]))["code"] == 40051
    assert client.post(emulator.base_url + "/nope", json={}).status_code == 404
    assert client.get(emulator.url).status_code == 405
    assert client.get(emulator.base_url + "/_emulator/health").json() == {"ok": True}


def test_dedup_on_source_event_and_id_within_48h() -> None:
    now = [1_000_000.0]
    app = EmulatorApp(token=None, clock=lambda: now[0])  # the store, with a fake clock
    app._store(request([event(1)]), [event(1)])
    app._store(request([event(1)]), [event(1), event(1, event="AddToCart")])
    assert app.duplicates == 1 and len(app.accepted) == 2
    now[0] += 48 * 3600 + 1
    app._store(request([event(1)]), [event(1)])
    assert app.duplicates == 1
    assert app.accepted[("P1", "Purchase", "e1")].receive_count == 3


def test_faults_are_deterministic_for_a_seed() -> None:
    spec = FaultSpec.parse("throttle=0.3,http5xx=0.2*2,drop=0.1")
    a, b = FaultInjector(spec, 42), FaultInjector(spec, 42)
    run_a = [a.next_request() for _ in range(50)]
    assert run_a == [b.next_request() for _ in range(50)]
    assert run_a.count("http5xx") <= 2 and "throttle" in run_a
    c = FaultInjector(FaultSpec.parse("revoke_after=3"), 0)
    assert [c.next_request() for _ in range(5)] == [None, None, None, "revoked", "revoked"]


def test_fault_spec_parsing() -> None:
    spec = FaultSpec.parse("throttle=1*3, reject=a|b, latency_ms=5, revoke_after=10")
    assert spec.throttle.probability == 1.0 and spec.throttle.max_count == 3
    assert spec.reject == frozenset({"a", "b"}) and spec.latency_ms == 5 and spec.revoke_after == 10
    assert FaultSpec.from_mapping(spec.to_dict()) == spec
    for bad in ("throttle=2", "nonsense=1", "throttle", "hang=-1"):
        with pytest.raises(ConfigError):
            FaultSpec.parse(bad)


def test_faults_over_http(emulator: EmulatorThread, client: httpx.Client) -> None:
    base = emulator.base_url
    set_faults = client.post(base + "/_emulator/faults",
                             json={"http429": "1*1", "retry_after": 2, "throttle": "1*1",
                                   "http5xx": "1*1", "sys_error": "1*1", "seed": 5})
    assert set_faults.status_code == 200 and set_faults.json()["seed"] == 5
    statuses = []
    for _ in range(5):
        r = client.post(emulator.url, json=request([event()]))
        statuses.append((r.status_code, r.headers.get("retry-after"),
                         r.json()["code"] if "json" in r.headers["content-type"] and
                         r.status_code == 200 else None))
    assert (503, None, None) in statuses and (429, "2", None) in statuses
    assert (200, None, 40100) in statuses and (200, None, 50000) in statuses
    assert statuses[-1] == (200, None, 0)
    assert client.post(base + "/_emulator/faults", json={"bogus": 1}).status_code == 400
    stats = client.get(base + "/_emulator/stats").json()
    assert stats["faults_injected"] == {"http5xx": 1, "http429": 1, "throttle": 1, "sys_error": 1}
    client.post(base + "/_emulator/reset")
    assert emulator.stats()["requests"] == 0 and emulator.events() == []


def test_drop_and_timeout_faults(emulator: EmulatorThread) -> None:
    emulator.set_faults("drop=1*1,timeout=1*1,hang=2")
    with httpx.Client(headers={"Access-Token": TOKEN}, timeout=0.3) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post(emulator.url, json=request([event()]))
        with pytest.raises(httpx.ReadTimeout):
            c.post(emulator.url, json=request([event()]))
        assert c.post(emulator.url, json=request([event()])).json()["code"] == 0


def test_reject_named_events(emulator: EmulatorThread, client: httpx.Client) -> None:
    emulator.set_faults("reject=e2,reject_noindex=e9")
    answer = post(client, emulator.url, request([event(1), event(2)]))
    assert answer == {**answer, "code": 40002, "message": "data.1.event_id: rejected (fault)"}
    answer = post(client, emulator.url, request([event(9)]))
    assert answer["code"] == 40002 and "data." not in answer["message"]


def test_keep_alive_reuses_one_connection(emulator: EmulatorThread, client: httpx.Client) -> None:
    for i in range(20):
        assert post(client, emulator.url, request([event(i)]))["code"] == 0
    assert len(emulator.events()) == 20


def test_emulator_command_runs_as_a_process(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tiktok_emulator", "--port", "0", "--token", "t0k",
                             "--faults", "throttle=1*1"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("emulator listening on http://127.0.0.1:")
        url = line.split()[-1]
        with httpx.Client(headers={"Access-Token": "t0k"}) as c:
            assert c.post(url, json=request([event()])).json()["code"] == 40100
            assert c.post(url, json=request([event()])).json()["code"] == 0
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    bad = subprocess.run([sys.executable, "-m", "tiktok_emulator", "--faults", "throttle=7"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 4 and "throttle" in bad.stderr and "Traceback" not in bad.stderr


def test_emulator_does_not_reveal_its_token() -> None:
    app = EmulatorApp(token=Secret(TOKEN))
    assert TOKEN not in repr(app.__dict__)


def test_lean_mode_checks_the_envelope_and_first_event_and_keeps_only_keys() -> None:
    with EmulatorThread(token=Secret(TOKEN), lean=True) as emu, httpx.Client(
        headers={"Access-Token": TOKEN}, timeout=5
    ) as c:
        ok = c.post(emu.url, json=request([event(1), event(2), event(1)])).json()
        assert ok["code"] == 0
        # only the first event is validated in lean mode: a bad second one is let through
        assert c.post(emu.url, json=request([event(3), event(4, event_time="x")])).json()["code"] == 0
        bad_first = c.post(emu.url, json=request([event(5, event_time="x")])).json()
        assert bad_first["code"] != 0 and "data.0.event_time" in bad_first["message"]
        assert c.post(emu.url, json=request([])).json()["code"] != 0  # the envelope still is
        stats = emu.stats()
        assert stats["lean"] is True and stats["events_received"] == 5
        assert stats["events_accepted"] == 4 and stats["duplicates"] == 1
        assert emu.events() == []  # no event is stored
