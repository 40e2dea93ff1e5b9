"""Configuration mistakes give one clear line on stderr and a documented exit code."""

from __future__ import annotations

from pathlib import Path

import pytest
from sender_harness import Project


def one_line_error(result_stderr: str) -> str:
    lines = [line for line in result_stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result_stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result_stderr
    return lines[0]


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
        "tiktok_outbox:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n"
        "      host: localhost\n      schema: tiktok\n"
    )
    result = project.sender("status")
    assert result.returncode == 4 and "postgres" in one_line_error(result.stderr)


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
