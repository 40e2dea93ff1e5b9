"""Configuration mistakes give one clear line on stderr and a documented exit code."""

from __future__ import annotations

from pathlib import Path

import pytest
from sender_harness import Project, one_line_error

from tiktok_emulator import EmulatorThread


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        ((), {"TIKTOK_ACCESS_TOKEN": None}, "TIKTOK_ACCESS_TOKEN"),
        ((), {"TIKTOK_API_URL": "not a url"}, "malformed API URL"),
        ((), {"TIKTOK_API_URL": "http://example.com/open_api/v1.3/event/track/"}, "plain http"),
        (("--token-file", "/nonexistent/token"), {}, "token file"),
        ((), {"DBT_DUCKDB_PATH": "/nonexistent/warehouse.duckdb"}, "warehouse file not found"),
        ((), {"DBT_TARGET": "prod"}, "target 'prod' not found"),
    ],
)
def test_configuration_errors_exit_4(
    project: Project, args: tuple[str, ...], env: dict[str, str | None], needle: str
) -> None:
    result = project.sender("push", *args, env=env)
    assert result.returncode == 4
    assert needle in one_line_error(result.stderr)


def test_missing_outbox_table(project: Project) -> None:
    project.outbox.execute("drop table tiktok.tiktok_events_outbox")
    for command in ("push", "status"):
        result = project.sender(command)
        assert result.returncode == 4
        assert "tiktok.tiktok_events_outbox not found" in one_line_error(result.stderr)


def test_outbox_missing_a_column(project: Project) -> None:
    project.outbox.execute("alter table tiktok.tiktok_events_outbox drop column event_time")
    result = project.sender("push")
    assert result.returncode == 4 and "event_time" in one_line_error(result.stderr)


def test_unsupported_warehouse_type(project: Project) -> None:
    (project.root / "profiles.yml").write_text(
        "tiktok_outbox:\n  target: bq\n  outputs:\n    bq:\n      type: bigquery\n"
        "      project: example\n      dataset: tiktok\n"
    )
    result = project.sender("status")
    assert result.returncode == 4
    line = one_line_error(result.stderr)
    assert "'bigquery' (target 'bq') is not supported" in line
    assert "the sender supports duckdb, postgres, spark, snowflake targets" in line


def test_incomplete_postgres_target(project: Project) -> None:
    (project.root / "profiles.yml").write_text(
        "tiktok_outbox:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n"
        "      host: localhost\n      schema: tiktok\n"
    )
    result = project.sender("status")
    assert result.returncode == 4 and "postgres target 'pg' needs `user`" in one_line_error(result.stderr)


def test_profile_needs_an_unset_env_var(project: Project) -> None:
    (project.root / "profiles.yml").write_text(
        "tiktok_outbox:\n  target: d\n  outputs:\n    d:\n      type: duckdb\n"
        "      path: \"{{ env_var('WAREHOUSE_FILE_NOT_SET') }}\"\n      schema: tiktok\n"
    )
    result = project.sender("status")
    assert result.returncode == 4 and "WAREHOUSE_FILE_NOT_SET" in one_line_error(result.stderr)


def test_profiles_dir_and_target_flags(project: Project, tmp_path: Path) -> None:
    elsewhere = tmp_path / "profiles_elsewhere"
    elsewhere.mkdir()
    (elsewhere / "profiles.yml").write_text(
        "tiktok_outbox:\n  target: broken\n  outputs:\n"
        "    broken:\n      type: duckdb\n      path: /nonexistent.duckdb\n"
        f"    ci:\n      type: duckdb\n      path: {project.outbox.path}\n      schema: tiktok\n"
    )
    env = {"DBT_PROFILES_DIR": None, "DBT_DUCKDB_PATH": None}
    assert project.sender("--profiles-dir", str(elsewhere), "status", env=env).returncode == 4
    ok = project.sender("--profiles-dir", str(elsewhere), "--target", "ci", "status", "--json",
                        env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.json()["outbox"] == 200
    via_env = project.sender("--profiles-dir", str(elsewhere), "status",
                             env={**env, "DBT_TARGET": "ci"})
    assert via_env.returncode == 0


def test_status_before_any_push(project: Project) -> None:
    result = project.sender("status")
    assert result.returncode == 0, result.stderr
    assert "never_sent" in result.stdout and "last run: none" in result.stdout


def test_usage_errors_exit_2(project: Project) -> None:
    assert project.sender("push", "--batch-size", "1001").returncode == 2
    assert project.sender("push", "--no-such-flag").returncode == 2
    assert project.sender("push", "--concurrency", "0").returncode == 2


def test_version(project: Project) -> None:
    from tiktok_sender import __version__

    result = project.sender("--version")
    assert result.returncode == 0 and result.stdout.strip() == __version__


@pytest.mark.parametrize(
    "url",
    ["https://", "http://[::1", "https://exa..mple.com/x/", "https://exa mple.com/x/", "https://example.com:port/x/",
     "javascript:alert(1)", "//business-api.tiktok.com/open_api/v1.3/event/track/"],
)
def test_malformed_api_urls_exit_4(project: Project, url: str) -> None:
    result = project.sender("push", env={"TIKTOK_API_URL": url})
    assert result.returncode == 4, result.stderr
    assert "API URL" in one_line_error(result.stderr)


def test_plain_http_needs_loopback_or_the_flag(project: Project) -> None:
    for host in ("example.com", "10.0.0.1", "localhost.example.com", "127.0.0.1.nip.io"):
        result = project.sender("push", env={"TIKTOK_API_URL": f"http://{host}/open_api/v1.3/event/track/"})
        assert result.returncode == 4 and "plain http" in one_line_error(result.stderr), host
    allowed = project.sender(
        "push", "--allow-insecure-http", "--dry-run",
        env={"TIKTOK_API_URL": "http://10.0.0.1/open_api/v1.3/event/track/"})
    assert allowed.returncode == 0, allowed.stderr


def test_warehouse_problems_exit_4(project: Project, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.duckdb"
    corrupt.write_bytes(b"this is not a database" * 100)
    result = project.sender("push", env={"DBT_DUCKDB_PATH": str(corrupt)})
    assert result.returncode == 4 and "not a valid DuckDB" in one_line_error(result.stderr)
    result = project.sender("push", env={"DBT_DUCKDB_PATH": str(tmp_path)})  # a directory
    assert result.returncode == 4 and "warehouse file not found" in one_line_error(result.stderr)
    result = project.sender("status", env={"DBT_DUCKDB_PATH": str(tmp_path / "missing" / "w.duckdb")})
    assert result.returncode == 4 and "warehouse file not found" in one_line_error(result.stderr)


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ("analytics", "analytics.tiktok_events_outbox not found"),
        ('tiktok\\"; drop table tiktok.tiktok_events_outbox; --', "invalid schema or table name"),
        ("tik-tok", "invalid schema or table name"),
    ],
)
def test_wrong_or_unsafe_schema_exit_4(project: Project, schema: str, needle: str) -> None:
    (project.root / "profiles.yml").write_text(
        "tiktok_outbox:\n  target: d\n  outputs:\n    d:\n      type: duckdb\n"
        f"      path: {project.outbox.path}\n      schema: \"{schema}\"\n"
    )
    for command in ("push", "status"):
        result = project.sender(command)
        assert result.returncode == 4 and needle in one_line_error(result.stderr)
    assert project.outbox.execute("select count(*) from tiktok.tiktok_events_outbox") == [(200,)]


def test_token_problems_exit_4(project: Project, tmp_path: Path) -> None:
    result = project.sender("push", "--token-file", str(tmp_path))  # a directory
    assert result.returncode == 4 and "token file" in one_line_error(result.stderr)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = project.sender("push", "--token-file", str(empty))
    assert result.returncode == 4 and "is empty" in one_line_error(result.stderr)
    result = project.sender("push", env={"TIKTOK_ACCESS_TOKEN": "two words"})
    assert result.returncode == 4 and "whitespace" in one_line_error(result.stderr)
    assert "two words" not in result.stderr


def test_broken_profiles_and_dump_path_exit_4(project: Project) -> None:
    (project.root / "profiles.yml").write_text("tiktok_outbox: [unclosed\n")
    result = project.sender("push")
    assert result.returncode == 4 and "cannot read" in one_line_error(result.stderr)


def test_unwritable_dump_file_exits_4(project: Project) -> None:
    result = project.sender("push", "--dump", "/nonexistent/dir/bodies.jsonl")
    assert result.returncode == 4
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write the dump file") and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("path", "needle"),
    [("/open_api/v1.3/event/wrong/", "HTTP 404"), ("/open_api/v1.2/event/track/", "40051")],
)
def test_wrong_endpoint_stops_the_run_with_exit_4(
    project: Project, emulator: EmulatorThread, path: str, needle: str
) -> None:
    result = project.sender("push", env={"TIKTOK_API_URL": emulator.base_url + path})
    assert result.returncode == 4, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the API stopped the run") and needle in last
    assert "TIKTOK_API_URL" in last and "Traceback" not in result.stderr
    assert emulator.events() == []


def test_lock_timeout_must_not_be_negative(project: Project) -> None:
    assert project.sender("push", "--lock-timeout", "-1").returncode == 2


def test_a_memory_limit_that_is_not_a_size_exits_4(project: Project) -> None:
    result = project.sender("push", "--duckdb-memory-limit", "64MB; drop table x")
    assert result.returncode == 4
    assert "--duckdb-memory-limit must be a size such as 512MB or 2GB" in one_line_error(result.stderr)
