"""profiles.example.yml: a target for every warehouse the SQL is dispatched for, every secret read
from the environment, and the unused cloud targets harmless to dbt and the sender."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dbt_harness import PROJECT_ROOT, VENV_BIN, dbt_env

EXAMPLE = PROJECT_ROOT / "profiles.example.yml"
# the adapters macros/ dispatches for (test_cross_db_rendering.ADAPTERS), by profile type
EXPECTED_TYPES = {"duckdb", "postgres", "spark", "snowflake", "bigquery", "databricks"}
SECRET_KEYS = re.compile(r"pass(word|phrase)?$|token$|keyfile$|private_key", re.IGNORECASE)
REQUIRED_ENV = re.compile(r"^\{\{\s*env_var\('([A-Z0-9_]+)'\)\s*\}\}$")  # no default
CLOUD_VARIABLES = re.compile(r"^(SNOWFLAKE|BIGQUERY|DATABRICKS)_")
# Targets of local emulators: a cloud adapter pointed at 127.0.0.1, whose credentials are the
# emulator's own and so have harmless defaults
EMULATED = {"snowflake_emulated"}


def outputs() -> dict[str, dict]:
    return yaml.safe_load(EXAMPLE.read_text())["tiktok_outbox"]["outputs"]


def test_every_dispatched_warehouse_has_a_target() -> None:
    assert {o["type"] for o in outputs().values()} == EXPECTED_TYPES


@pytest.mark.parametrize("target", sorted(outputs()))
def test_secrets_come_from_the_environment_without_a_default(target: str) -> None:
    secrets = {k: v for k, v in outputs()[target].items() if SECRET_KEYS.search(k)}
    if outputs()[target]["type"] in {"snowflake", "bigquery", "databricks"}:
        assert secrets, f"{target} shows no credential"
    for key, value in secrets.items():
        if target == "postgres":  # the throwaway test cluster trusts local connections
            assert str(value).startswith("{{ env_var('TIKTOK_PG_PASSWORD'"), key
        elif target in EMULATED:  # never a cloud variable, whose value would be a real secret
            assert re.match(r"^\{\{\s*env_var\('FAKESNOW_[A-Z_]+', '[^']*'\)\s*\}\}$", str(value)), key
        else:
            assert REQUIRED_ENV.match(str(value)), f"{target}.{key} must be env_var('...') with no default"


@pytest.mark.parametrize("target", sorted(EMULATED))
def test_an_emulated_target_only_reaches_the_local_emulator(target: str) -> None:
    """Its defaults are harmless only because it cannot reach a real account: the host is fixed
    to the loopback address, over plain http, and the name says emulated."""
    output = outputs()[target]
    assert "emulated" in target
    assert output["host"] == "127.0.0.1" and output["protocol"] == "http"
    assert not any(CLOUD_VARIABLES.match(name) for name in re.findall(r"env_var\('([A-Z0-9_]+)'", str(output)))


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in dbt_env(tmp_path / "warehouse.duckdb").items() if not CLOUD_VARIABLES.match(k)}
    env["DBT_PROFILES_DIR"] = str(tmp_path)
    return env


def test_dbt_reads_the_default_target_while_the_cloud_variables_are_unset(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "profiles.yml")
    proc = subprocess.run(
        [str(VENV_BIN / "dbt"), "debug", "--config-dir", "--project-dir", str(PROJECT_ROOT)],
        cwd=PROJECT_ROOT, env=clean_env(tmp_path), capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    proc = subprocess.run(
        [str(VENV_BIN / "dbt"), "parse", "--project-dir", str(PROJECT_ROOT),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        cwd=PROJECT_ROOT, env=clean_env(tmp_path), capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.parametrize("target", ["snowflake", "bigquery", "databricks"])
def test_the_sender_names_an_unset_variable_of_a_cloud_target(tmp_path: Path, target: str) -> None:
    shutil.copy(EXAMPLE, tmp_path / "profiles.yml")
    sender = [str(VENV_BIN / "sender"), "--profiles-dir", str(tmp_path), "--target", target, "status"]
    unset = subprocess.run(sender, cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True,
                           timeout=60, check=False)
    assert unset.returncode == 4 and "Traceback" not in unset.stderr
    assert re.search(r"needs the environment variable (SNOWFLAKE|BIGQUERY|DATABRICKS)_", unset.stderr)


@pytest.mark.parametrize("target", ["bigquery", "databricks"])
def test_the_sender_refuses_a_cloud_target_it_does_not_read(tmp_path: Path, target: str) -> None:
    """BigQuery and Databricks: refused once their variables are set (Snowflake is read: its
    connection errors are tests/python/sender/test_snowflake_profiles.py's)."""
    shutil.copy(EXAMPLE, tmp_path / "profiles.yml")
    sender = [str(VENV_BIN / "sender"), "--profiles-dir", str(tmp_path), "--target", target, "status"]
    env = clean_env(tmp_path)
    names = set(re.findall(r"env_var\('([A-Z0-9_]+)'", EXAMPLE.read_text()))
    env.update({n: "set-for-the-test" for n in names if CLOUD_VARIABLES.match(n)})
    refused = subprocess.run(sender, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 4 and "Traceback" not in refused.stderr
    assert f"warehouse type '{target}' (target '{target}') is not supported" in refused.stderr
    assert "set-for-the-test" not in refused.stderr + refused.stdout
