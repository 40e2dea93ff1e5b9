"""Settings, secrets, profile resolution and pacing: the small pure parts."""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
from pathlib import Path

import pytest
from sender_harness import PROFILES_YML, TOKEN

from tiktok_sender.api.client import ApiClient
from tiktok_sender.api.pacing import Pacer, backoff_delay
from tiktok_sender.errors import ConfigError
from tiktok_sender.logs import _Redact
from tiktok_sender.profiles import load_target
from tiktok_sender.settings import PushSettings, Secret, load_token, redact, safe_url, validate_api_url

URL = "https://business-api.tiktok.com/open_api/v1.3/event/track/"


def test_secret_is_never_shown() -> None:
    secret = Secret(TOKEN)
    settings = PushSettings(api_url=URL, token=secret)
    for text in (repr(secret), str(secret), repr(settings), str(settings.to_record()),
                 f"{secret}", repr(copy.deepcopy(settings))):
        assert TOKEN not in text
    assert secret.reveal() == TOKEN
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert redact(f"bad token {TOKEN}!", secret) == "bad token ***!"
    client = ApiClient(URL, secret, concurrency=1, connect_timeout=1, read_timeout=1)
    assert TOKEN not in repr(client)
    asyncio.run(client.__aexit__(None, None, None))


def test_log_lines_are_redacted() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "token %s here", (TOKEN,), None)
    _Redact(Secret(TOKEN)).filter(record)
    assert record.getMessage() == "token *** here"


def test_token_sources(tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text(f"  {TOKEN}\n")
    assert load_token("other", file) == Secret(TOKEN)  # the file wins
    assert load_token(f" {TOKEN} ", None) == Secret(TOKEN)
    assert load_token("", None) is None and load_token(None, None) is None
    file.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        load_token(None, file)
    with pytest.raises(ConfigError, match="whitespace"):
        load_token("two words", None)
    with pytest.raises(ConfigError, match="3 characters long, too short") as refused:
        load_token("xyz", None)
    assert "xyz" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        (URL, True),
        ("http://127.0.0.1:8765/open_api/v1.3/event/track/", True),
        ("http://localhost/x/", True),
        ("http://[::1]:80/x/", True),
        ("http://example.com/x/", False),
        ("https://user:pw@example.com/x/", False),
        ("https://example.com/x/?access_token=1", False),
        ("ftp://example.com/", False),
        ("example.com/track", False),
        ("https://example.com:99999/", False),
    ],
)
def test_api_url_validation(url: str, ok: bool) -> None:
    if ok:
        assert validate_api_url(url) == url
    else:
        with pytest.raises(ConfigError):
            validate_api_url(url)


def test_insecure_http_needs_the_flag() -> None:
    assert validate_api_url("http://example.com/x/", allow_insecure_http=True)
    assert safe_url("https://u:p@h.example/x/?q=1#f") == "https://h.example/x/"


def test_settings_validation() -> None:
    with pytest.raises(ConfigError, match="access token"):
        PushSettings(api_url=URL)
    assert PushSettings(api_url=URL, dry_run=True).token is None
    with pytest.raises(ConfigError, match="batch-size"):
        PushSettings(api_url=URL, dry_run=True, batch_size=1001)
    assert PushSettings(api_url=URL, dry_run=True, test_event_code="  ").test_event_code is None
    record = PushSettings(api_url=URL, token=Secret(TOKEN)).to_record()
    assert "token" not in record and record["token_set"] is True


def test_profile_resolution(tmp_path: Path) -> None:
    (tmp_path / "profiles.yml").write_text(PROFILES_YML)
    target = load_target(environ={"DBT_DUCKDB_PATH": "/data/w.duckdb"}, cwd=tmp_path)
    assert (target.type, target.schema, target.path) == ("duckdb", "tiktok", Path("/data/w.duckdb"))
    default = load_target(environ={}, cwd=tmp_path)
    assert default.path == tmp_path / "target" / "tiktok_outbox.duckdb"
    (tmp_path / "dbt_project.yml").write_text("name: x\nprofile: other\n")
    with pytest.raises(ConfigError, match="profile 'other' not found"):
        load_target(environ={}, cwd=tmp_path)
    assert load_target(environ={}, cwd=tmp_path, profile_flag="tiktok_outbox").profile == "tiktok_outbox"
    elsewhere = tmp_path / "dir"
    elsewhere.mkdir()
    (elsewhere / "profiles.yml").write_text(PROFILES_YML.replace("target: duckdb", "target: nope"))
    with pytest.raises(ConfigError, match="target 'nope'"):
        load_target(environ={"DBT_PROFILES_DIR": str(elsewhere)}, cwd=tmp_path, profile_flag="tiktok_outbox")
    env = {"DBT_PROFILES_DIR": str(elsewhere), "DBT_TARGET": "duckdb"}
    assert load_target(environ=env, cwd=tmp_path, profile_flag="tiktok_outbox").target == "duckdb"
    assert load_target(profiles_dir_flag=tmp_path, environ=env, cwd=tmp_path,
                       profile_flag="tiktok_outbox", target_flag="duckdb").target == "duckdb"


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    assert backoff_delay(1, base=1, cap=30, rng=lambda: 0.0) == 0.5
    assert backoff_delay(3, base=1, cap=30, rng=lambda: 1.0) == 4.0
    assert backoff_delay(10, base=1, cap=30, rng=lambda: 1.0) == 30.0
    assert backoff_delay(1, base=1, cap=30, retry_after=12, rng=lambda: 1.0) == 12
    assert backoff_delay(1, base=1, cap=30, retry_after=10_000) == 900.0


def test_pacer_rate_limit_and_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        clock[0] += seconds

    async def scenario() -> None:
        pacer = Pacer(rate_limit=10, clock=lambda: clock[0])
        for _ in range(3):
            await pacer.wait()
        pacer.pause(1.0)
        await pacer.wait()

    monkeypatch.setattr("tiktok_sender.api.pacing.asyncio.sleep", fake_sleep)
    asyncio.run(scenario())
    assert slept[:2] == [0.1, 0.1] and 1.0 in slept
