"""A `snowflake` target of profiles.yml as the sender reads it: dbt-snowflake's keys become the ADBC
Snowflake driver's options (`warehouse.snowflake.connection_options`), the authentication that
`authenticator` names is the driver's to do, and every secret (password, private key and its
passphrase, OAuth token) stays out of reprs and messages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sender_harness import REPO

from tiktok_sender.errors import ConfigError, WarehouseError
from tiktok_sender.profiles import load_target
from tiktok_sender.warehouse import open_warehouse
from tiktok_sender.warehouse.snowflake import connection_options


def write_profile(tmp_path: Path, output: str) -> Path:
    (tmp_path / "profiles.yml").write_text(
        "tiktok_outbox:\n  target: sf\n  outputs:\n    sf:\n"
        + "".join(f"      {line}\n" for line in textwrap.dedent(output).strip().splitlines())
    )
    return tmp_path


def load(tmp_path: Path, output: str) -> object:
    return load_target(profiles_dir_flag=write_profile(tmp_path, output), environ={}, cwd=tmp_path)


def test_the_repository_emulated_target_reaches_the_emulator(tmp_path: Path) -> None:
    (tmp_path / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
    target = load_target(profiles_dir_flag=tmp_path, target_flag="snowflake_emulated",
                         environ={"FAKESNOW_PORT": "9001"}, cwd=tmp_path)
    assert (target.type, target.schema) == ("snowflake", "tiktok")
    options = connection_options(target)
    assert options["adbc.snowflake.sql.uri.host"] == "127.0.0.1"
    assert options["adbc.snowflake.sql.uri.port"] == "9001"
    assert options["adbc.snowflake.sql.uri.protocol"] == "http"
    assert (options["adbc.snowflake.sql.account"], options["adbc.snowflake.sql.db"]) == ("fakesnow", "ANALYTICS")
    assert options["adbc.snowflake.sql.auth_type"] == "auth_snowflake"


def test_a_password_target_passes_dbt_snowflakes_keys_on(tmp_path: Path) -> None:
    target = load(tmp_path, """
        type: snowflake
        account: xy12345.eu-west-1
        user: LOADER
        password: pw-SECRET-1
        role: TRANSFORMER
        database: ANALYTICS
        warehouse: TRANSFORMING
        schema: tiktok
        connect_timeout: 20
        query_tag: tiktok-outbox
        threads: 8
    """)
    options = connection_options(target)
    assert options == {
        "adbc.snowflake.sql.account": "xy12345.eu-west-1",
        "adbc.snowflake.sql.db": "ANALYTICS",
        "adbc.snowflake.sql.schema": "tiktok",
        "adbc.snowflake.sql.client_option.app_name": "tiktok-outbox-sender",
        "adbc.snowflake.sql.client_option.use_high_precision": "false",
        "username": "LOADER",
        "password": "pw-SECRET-1",
        "adbc.snowflake.sql.warehouse": "TRANSFORMING",
        "adbc.snowflake.sql.role": "TRANSFORMER",
        "adbc.snowflake.sql.client_option.login_timeout": "20s",
        "adbc.snowflake.sql.auth_type": "auth_snowflake",
    }
    assert "pw-SECRET-1" not in repr(target) and "pw-SECRET-1" not in target.describe()
    assert target.options["query_tag"] == "tiktok-outbox" and "threads" not in target.options


@pytest.mark.parametrize(("extra", "expected"), [
    ("authenticator: externalbrowser", {"adbc.snowflake.sql.auth_type": "auth_ext_browser"}),
    ("authenticator: oauth\ntoken: oauth-SECRET-2",
     {"adbc.snowflake.sql.auth_type": "auth_oauth",
      "adbc.snowflake.sql.client_option.auth_token": "oauth-SECRET-2"}),
    ("private_key_path: /keys/rsa_key.p8\nprivate_key_passphrase: pass-SECRET-3",
     {"adbc.snowflake.sql.auth_type": "auth_jwt",
      "adbc.snowflake.sql.client_option.jwt_private_key": "/keys/rsa_key.p8",
      "adbc.snowflake.sql.client_option.jwt_private_key_pkcs8_password": "pass-SECRET-3"}),
    ("authenticator: snowflake_jwt\nprivate_key: key-SECRET-4",
     {"adbc.snowflake.sql.auth_type": "auth_jwt",
      "adbc.snowflake.sql.client_option.jwt_private_key_pkcs8_value": "key-SECRET-4"}),
    ("authenticator: https://acme.okta.com", {"adbc.snowflake.sql.auth_type": "auth_okta",
                                              "adbc.snowflake.sql.client_option.okta_url": "https://acme.okta.com"}),
])
def test_the_authenticator_is_the_drivers_to_do(tmp_path: Path, extra: str, expected: dict[str, str]) -> None:
    target = load(tmp_path, "type: snowflake\naccount: a1\nuser: U\ndatabase: D\nschema: s\n" + extra)
    options = connection_options(target)
    assert {k: options[k] for k in expected} == expected
    assert "password" not in options
    for secret in ("oauth-SECRET-2", "pass-SECRET-3", "key-SECRET-4"):
        assert secret not in repr(target)
        assert secret not in str(target.options)
    assert all(s.reveal() in expected.values() for s in target.secrets())


@pytest.mark.parametrize(("output", "message"), [
    ("type: snowflake\nuser: U\ndatabase: D\nschema: s", "needs `account`"),
    ("type: snowflake\naccount: a1\nschema: s", "needs `database`"),
    ("type: snowflake\naccount: a1\ndatabase: D\nschema: s\nport: 99999", "port must be a number"),
])
def test_an_incomplete_target_is_a_clear_error(tmp_path: Path, output: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, output)


def test_an_unknown_authenticator_is_a_clear_error(tmp_path: Path) -> None:
    target = load(tmp_path, "type: snowflake\naccount: a1\ndatabase: D\nschema: s\nauthenticator: kerberos")
    with pytest.raises(ConfigError, match="authenticator 'kerberos' is not one the sender knows"):
        connection_options(target)


def test_an_unreachable_snowflake_is_one_line_without_the_password(tmp_path: Path) -> None:
    target = load(tmp_path, """
        type: snowflake
        account: nowhere
        user: U
        password: pw-SECRET-5
        database: D
        schema: s
        host: 127.0.0.1
        port: 9
        protocol: http
        connect_timeout: 5
    """)
    with pytest.raises(WarehouseError) as caught:
        open_warehouse(target, read_only=True)
    message = str(caught.value)
    assert message.startswith("cannot connect to Snowflake (snowflake target 'sf'")
    assert "pw-SECRET-5" not in message and "\n" not in message
