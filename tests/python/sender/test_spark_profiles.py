"""A `spark` target of profiles.yml as the sender reads it: Spark Connect's address from the
target's `spark.remote` (how dbt-spark's session method reaches a server), else SPARK_REMOTE; a
target that names no Spark Connect server is a clear error, not a local Spark started by surprise."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sender_harness import REPO

from tiktok_sender.errors import ConfigError
from tiktok_sender.profiles import load_target, spark_remote


def write_profile(tmp_path: Path, output: str) -> Path:
    (tmp_path / "profiles.yml").write_text(
        "tiktok_outbox:\n  target: sp\n  outputs:\n    sp:\n"
        + "".join(f"      {line}\n" for line in textwrap.dedent(output).strip().splitlines())
    )
    return tmp_path


def test_the_repository_profile_reads_spark_remote(tmp_path: Path) -> None:
    (tmp_path / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
    default = load_target(profiles_dir_flag=tmp_path, target_flag="spark", environ={}, cwd=tmp_path)
    assert (default.type, default.schema, default.options) == ("spark", "tiktok", {"remote": "sc://127.0.0.1:15002"})
    assert "sc://127.0.0.1:15002" in default.describe()
    chosen = load_target(profiles_dir_flag=tmp_path, target_flag="spark",
                         environ={"SPARK_REMOTE": "sc://spark.internal:443/;use_ssl=true"}, cwd=tmp_path)
    assert chosen.options == {"remote": "sc://spark.internal:443/;use_ssl=true"}


def test_a_session_target_without_spark_remote_falls_back_to_the_environment(tmp_path: Path) -> None:
    write_profile(tmp_path, """
        type: spark
        method: session
        host: local
        schema: analytics
    """)
    target = load_target(profiles_dir_flag=tmp_path, environ={"SPARK_REMOTE": "sc://h:15002"}, cwd=tmp_path)
    assert (target.schema, target.options) == ("analytics", {"remote": "sc://h:15002"})


@pytest.mark.parametrize(("output", "message"), [
    ("type: spark\nmethod: thrift\nhost: spark.internal\nschema: analytics",
     "the sender reads Spark through Spark Connect"),
    ("type: spark\nmethod: session\nhost: local\nserver_side_parameters:\n  spark.remote: sc://h:1",
     "needs `schema`"),
])
def test_a_spark_target_the_sender_cannot_reach_is_a_clear_error(tmp_path: Path, output: str, message: str) -> None:
    write_profile(tmp_path, output)
    with pytest.raises(ConfigError, match=message):
        load_target(profiles_dir_flag=tmp_path, environ={}, cwd=tmp_path)


def test_a_token_in_the_spark_connect_url_is_a_secret(tmp_path: Path) -> None:
    (tmp_path / "profiles.yml").write_text((REPO / "profiles.example.yml").read_text())
    remote = "sc://spark.internal:443/;use_ssl=true;token=tok-SECRET-42;user_id=sender"
    target = load_target(profiles_dir_flag=tmp_path, target_flag="spark", environ={"SPARK_REMOTE": remote},
                         cwd=tmp_path)
    assert spark_remote(target) == remote  # what the client connects with
    assert [s.reveal() for s in target.secrets()] == ["tok-SECRET-42"]
    assert "tok-SECRET-42" not in target.describe() + repr(target)
    assert "sc://spark.internal:443/;use_ssl=true;token=***;user_id=sender" in target.describe()
