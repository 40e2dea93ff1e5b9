"""A `postgres` target of profiles.yml, rendered the way dbt renders it: env_var, the as_number /
as_bool / as_native / as_text filters, and a password that nothing ever shows."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest
from pg_harness import PG_PASSWORD
from sender_harness import REPO

from tiktok_sender.errors import ConfigError
from tiktok_sender.profiles import load_target

PG_ENV = {
    "TIKTOK_PG_HOST": "db.internal",
    "TIKTOK_PG_PORT": "6543",
    "TIKTOK_PG_USER": "loader",
    "TIKTOK_PG_PASSWORD": PG_PASSWORD,
    "TIKTOK_PG_DATABASE": "analytics",
}


def write_profile(tmp_path: Path, output: str) -> Path:
    (tmp_path / "profiles.yml").write_text(
        "tiktok_outbox:\n  target: pg\n  outputs:\n    pg:\n"
        + "".join(f"      {line}\n" for line in textwrap.dedent(output).strip().splitlines())
    )
    return tmp_path


def test_the_repository_profile_gives_a_postgres_target(tmp_path: Path) -> None:
    (tmp_path / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
    target = load_target(profiles_dir_flag=tmp_path, target_flag="postgres", environ=PG_ENV, cwd=tmp_path)
    assert (target.type, target.schema, target.path) == ("postgres", "tiktok", None)
    assert target.options == {"host": "db.internal", "port": 6543, "user": "loader", "dbname": "analytics"}
    assert target.password is not None and target.password.reveal() == PG_PASSWORD
    assert target.secrets() == (target.password,)
    assert target.describe() == (
        "postgres target 'postgres' of profile 'tiktok_outbox' at loader@db.internal:6543/analytics")
    for text in (repr(target), str(target), target.describe(), repr(copy.deepcopy(target)),
                 str(target.options)):
        assert PG_PASSWORD not in text

    defaults = load_target(profiles_dir_flag=tmp_path, target_flag="postgres", environ={}, cwd=tmp_path)
    assert defaults.options["port"] == 5432 and defaults.password is None  # '' means no password


def test_dbt_filters_give_native_values(tmp_path: Path) -> None:
    write_profile(tmp_path, """
        type: postgres
        host: "{{ env_var('H') | as_text }}"
        port: "{{ env_var('P') | as_number }}"
        user: "{{ 'u' ~ 'ser' }}"
        database: "{{ env_var('D', 'fallback') }}"
        pass: "{{ env_var('PW') }}"
        schema: "{{ 'tik' }}{{ 'tok' }}"
        connect_timeout: "{{ env_var('T') | as_number }}"
        keepalives_idle: "{{ 5 }}"
        sslmode: require
        threads: "{{ env_var('THREADS') | as_native }}"
        retries: "{{ env_var('FLAG') | as_bool }}"
    """)
    environ = {"H": "123", "P": " 5433 ", "PW": PG_PASSWORD, "T": "2.5", "THREADS": "[1, 2]", "FLAG": "True"}
    target = load_target(profiles_dir_flag=tmp_path, environ=environ, cwd=tmp_path)
    # as dbt: a value without a filter stays a string, even `{{ 5 }}`
    assert target.options == {"host": "123", "port": 5433, "user": "user", "dbname": "fallback",
                              "connect_timeout": 2.5, "keepalives_idle": "5", "sslmode": "require"}
    assert target.schema == "tiktok" and target.password is not None
    assert target.password.reveal() == PG_PASSWORD


@pytest.mark.parametrize(
    ("output", "environ", "needle"),
    [
        ("type: postgres\nhost: h\nschema: s", {}, "postgres target 'pg' needs `user`, `dbname`"),
        ("type: postgres\nhost: h\nuser: u\ndbname: d", {}, "needs `schema`"),
        ("type: postgres\nhost: h\nuser: u\ndbname: d\nschema: s\nport: 70000", {}, "port must be a number"),
        ("type: postgres\nhost: h\nuser: u\ndbname: d\nschema: s\nport: \"{{ env_var('P') | as_number }}\"",
         {"P": "54x"}, "key 'tiktok_outbox.outputs.pg.port': could not convert value '54x' into type 'number'"),
        ("type: postgres\nhost: h\nuser: u\ndbname: d\nschema: s\nretries: \"{{ env_var('B') | as_bool }}\"",
         {"B": "yes"}, "into type 'bool'"),
        ("type: bigquery\nproject: a", {}, "warehouse type 'bigquery' (target 'pg') is not supported"),
    ],
)
def test_bad_postgres_targets_are_one_clear_line(
    tmp_path: Path, output: str, environ: dict[str, str], needle: str
) -> None:
    write_profile(tmp_path, output)
    with pytest.raises(ConfigError) as caught:
        load_target(profiles_dir_flag=tmp_path, environ=environ, cwd=tmp_path)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_password_that_fails_to_render_is_not_quoted(tmp_path: Path) -> None:
    write_profile(tmp_path, """
        type: postgres
        host: h
        user: u
        dbname: d
        schema: s
        password: "{{ env_var('PW') | as_number }}"
    """)
    with pytest.raises(ConfigError) as caught:
        load_target(profiles_dir_flag=tmp_path, environ={"PW": PG_PASSWORD}, cwd=tmp_path)
    assert "outputs.pg.password" in str(caught.value) and PG_PASSWORD not in str(caught.value)
