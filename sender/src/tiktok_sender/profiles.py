"""Find the warehouse the way dbt does: the same profiles.yml, profile, target and env vars.

Profiles directory: `--profiles-dir`, else `$DBT_PROFILES_DIR`, else the current directory when it
holds profiles.yml, else ~/.dbt. Target: `--target`, else `$DBT_TARGET`, else the profile's
`target`. Profile name: `--profile`, else `profile:` in ./dbt_project.yml, else `tiktok_outbox`.
String values are rendered with Jinja, `env_var('X')` and `env_var('X', 'default')` included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from tiktok_sender.errors import ConfigError

DEFAULT_PROFILE = "tiktok_outbox"


@dataclass(frozen=True)
class WarehouseTarget:
    """The resolved dbt output the sender reads from and writes receipts to."""

    profile: str
    target: str
    type: str
    schema: str
    path: Path | None
    options: Mapping[str, Any]

    def describe(self) -> str:
        where = f" at {self.path}" if self.path is not None else ""
        return f"{self.type} target '{self.target}' of profile '{self.profile}'{where}"


def profiles_dir(flag: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    if flag is not None:
        return flag
    if environ.get("DBT_PROFILES_DIR"):
        return Path(environ["DBT_PROFILES_DIR"])
    if (cwd / "profiles.yml").is_file():
        return cwd
    return Path.home() / ".dbt"


def profile_name(flag: str | None, cwd: Path) -> str:
    if flag:
        return flag
    project = cwd / "dbt_project.yml"
    if project.is_file():
        try:
            data = yaml.safe_load(project.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot parse {project}: {exc.__class__.__name__}") from None
        if isinstance(data, dict) and isinstance(data.get("profile"), str):
            return data["profile"]
    return DEFAULT_PROFILE


def _renderer(environ: Mapping[str, str]) -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined)

    def env_var(name: str, default: Any = None) -> Any:
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"profiles.yml needs the environment variable {name}, which is not set")

    env.globals["env_var"] = env_var
    return env


def _render(value: Any, env: SandboxedEnvironment, key: str) -> Any:
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        try:
            return env.from_string(value).render()
        except TemplateError as exc:
            raise ConfigError(f"cannot render profiles.yml key '{key}': {exc.message}") from None
    if isinstance(value, dict):
        return {k: _render(v, env, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, env, key) for v in value]
    return value


def load_target(
    *,
    profiles_dir_flag: Path | None = None,
    target_flag: str | None = None,
    profile_flag: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> WarehouseTarget:
    """Resolve and render the dbt target; raises ConfigError with one clear line on any problem."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    directory = profiles_dir(profiles_dir_flag, environ, cwd)
    path = directory / "profiles.yml"
    if not path.is_file():
        raise ConfigError(
            f"no profiles.yml in {directory} (set --profiles-dir or DBT_PROFILES_DIR)"
        )
    try:
        profiles = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc.__class__.__name__}") from None
    name = profile_name(profile_flag, cwd)
    profile = profiles.get(name) if isinstance(profiles, dict) else None
    if not isinstance(profile, dict):
        raise ConfigError(f"profile '{name}' not found in {path}")
    env = _renderer(environ)
    target = target_flag or environ.get("DBT_TARGET") or _render(profile.get("target"), env, "target")
    target = target or "default"
    outputs = profile.get("outputs") or {}
    if not isinstance(outputs, dict) or target not in outputs:
        known = ", ".join(sorted(outputs)) if isinstance(outputs, dict) else ""
        raise ConfigError(f"target '{target}' not found in profile '{name}' (targets: {known})")
    output = _render(outputs[target], env, f"{name}.outputs.{target}")
    if not isinstance(output, dict):
        raise ConfigError(f"target '{target}' of profile '{name}' is not a mapping")
    kind = str(output.get("type", "")).strip()
    if kind != "duckdb":
        raise ConfigError(
            f"warehouse type '{kind or '?'}' (target '{target}') is not supported yet; "
            "the sender supports duckdb targets"
        )
    raw_path = str(output.get("path") or "").strip()
    if not raw_path or raw_path == ":memory:":
        raise ConfigError(f"duckdb target '{target}' needs a file `path` (not :memory:)")
    db_path = Path(raw_path).expanduser()
    if not db_path.is_absolute():
        db_path = cwd / db_path
    schema = str(output.get("schema") or "main")
    options = {k: v for k, v in output.items() if k not in {"type", "path", "schema"}}
    return WarehouseTarget(
        profile=name, target=target, type=kind, schema=schema, path=db_path, options=options
    )
