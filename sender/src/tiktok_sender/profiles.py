"""Find the warehouse the way dbt does: the same profiles.yml, profile, target and env vars.

Profiles directory: `--profiles-dir`, else `$DBT_PROFILES_DIR`, else the current directory when it
holds profiles.yml, else ~/.dbt. Target: `--target`, else `$DBT_TARGET`, else the profile's
`target`. Profile name: `--profile`, else `profile:` in ./dbt_project.yml, else `tiktok_outbox`.
String values are rendered with Jinja the way dbt renders profiles: `env_var('X')` and
`env_var('X', 'default')`, and the filters `as_number`, `as_bool`, `as_native` (the value becomes
a number, a boolean, any literal) and `as_text` (it stays a string).

Targets of type `duckdb` (a file `path`), `postgres` (host, port, user, password, dbname or
database, schema, optional sslmode, sslcert, sslkey, sslrootcert, connect_timeout,
keepalives_idle, role), `spark` (Spark Connect) and `snowflake` (dbt-snowflake's keys, see
`_snowflake_target`) are supported. Passwords, tokens and keys are held in `Secret`s from the
moment they are read: no repr, message or table shows them.

The dbt project is the current directory when it holds dbt_project.yml; its manifest is
`<target-path>/manifest.json`, the target path being `$DBT_TARGET_PATH`, else `target-path:` of
dbt_project.yml, else `target` (relative to the project). `relations` reads the outbox's and the
delivery tables' names from it.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.sandbox import SandboxedEnvironment

from tiktok_sender.errors import ConfigError
from tiktok_sender.settings import REDACTED, Secret

DEFAULT_PROFILE = "tiktok_outbox"
SUPPORTED_TYPES = ("duckdb", "postgres", "spark", "snowflake")
POSTGRES_DEFAULT_PORT = 5432
# Optional keys of a postgres target the sender passes on to the connection (as dbt-postgres
# does); the others (threads, search_path, retries, ...) concern dbt only.
POSTGRES_OPTIONS = ("sslmode", "sslcert", "sslkey", "sslrootcert", "connect_timeout",
                    "keepalives_idle", "role")
# Keys of a snowflake target the sender passes on to the ADBC Snowflake driver (dbt-snowflake's
# names); the secrets among dbt-snowflake's keys are SNOWFLAKE_SECRETS.
SNOWFLAKE_OPTIONS = ("account", "user", "database", "warehouse", "role", "authenticator",
                     "private_key_path", "host", "port", "protocol", "connect_timeout", "query_tag")
SNOWFLAKE_SECRETS = ("private_key", "private_key_passphrase", "token")


@dataclass(frozen=True)
class WarehouseTarget:
    """The resolved dbt output the sender reads from and writes receipts to."""

    profile: str
    target: str
    type: str
    schema: str
    path: Path | None
    options: Mapping[str, Any]
    """The target's other keys. For postgres: host, port, user, dbname and the POSTGRES_OPTIONS
    given; never the password."""
    password: Secret | None = field(default=None, repr=False)
    """A postgres or snowflake target's password, or the token of a spark target's Spark Connect
    URL, if it has one."""
    credentials: Mapping[str, Secret] = field(default_factory=dict, repr=False)
    """A snowflake target's other secrets (SNOWFLAKE_SECRETS) that it gives."""
    project_dir: Path | None = None
    """The dbt project the target was loaded in (the directory holding dbt_project.yml), if any."""
    manifest_path: Path | None = None
    """Where dbt writes that project's manifest (whether or not it exists yet); None without a
    project."""

    def describe(self) -> str:
        if self.type == "postgres":
            o = self.options
            where = f" at {o.get('user')}@{o.get('host')}:{o.get('port')}/{o.get('dbname')}"
        elif self.type == "spark":
            where = f" at {self.options.get('remote')}"
        elif self.type == "snowflake":
            where = f" at {self.options.get('user')}@{self.options.get('account')}/{self.options.get('database')}"
        else:
            where = f" at {self.path}" if self.path is not None else ""
        return f"{self.type} target '{self.target}' of profile '{self.profile}'{where}"

    def secrets(self) -> tuple[Secret, ...]:
        """What must never be shown (for `settings.redact`)."""
        return ((self.password,) if self.password is not None else ()) + tuple(self.credentials.values())


def profiles_dir(flag: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    if flag is not None:
        return flag
    if environ.get("DBT_PROFILES_DIR"):
        return Path(environ["DBT_PROFILES_DIR"])
    if (cwd / "profiles.yml").is_file():
        return cwd
    return Path.home() / ".dbt"


def dbt_project(directory: Path) -> dict[str, Any] | None:
    """The parsed dbt_project.yml of `directory`, or None when there is none."""
    project = directory / "dbt_project.yml"
    if not project.is_file():
        return None
    try:
        data = yaml.safe_load(project.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot parse {project}: {exc.__class__.__name__}") from None
    return data if isinstance(data, dict) else {}


def profile_name(flag: str | None, cwd: Path) -> str:
    if flag:
        return flag
    data = dbt_project(cwd)
    if data is not None and isinstance(data.get("profile"), str):
        return data["profile"]
    return DEFAULT_PROFILE


def manifest_path(project_dir: Path, environ: Mapping[str, str]) -> Path:
    """Where dbt writes the manifest of the project in `project_dir`: the target path is
    $DBT_TARGET_PATH, else dbt_project.yml's `target-path`, else `target`, relative to the
    project (dbt's `--target-path` flag is dbt's own: the sender cannot see it)."""
    data = dbt_project(project_dir) or {}
    configured = data.get("target-path")
    if not isinstance(configured, str):
        configured = ""
    target_path = environ.get("DBT_TARGET_PATH") or configured
    return project_dir / (target_path.strip() or "target") / "manifest.json"


class _Text(str):
    """A value marked `as_text`: it stays a string."""


class _Native(str):
    """A value marked `as_native`: it becomes the Python literal it spells, if it spells one."""


class _Bool(_Native):
    """A value marked `as_bool`: it must spell a boolean."""


class _Number(_Native):
    """A value marked `as_number`: it must spell a number."""


def _native_concat(nodes: Iterable[Any]) -> Any:
    """The rendered value, as dbt's profile rendering gives it: one node is returned as it is
    (a marked one converted to its type); several are joined into a string."""
    nodes = iter(nodes)
    head = list(islice(nodes, 2))
    if not head:
        return ""
    if len(head) > 1:
        return "".join(str(v) for v in chain(head, nodes))
    raw = head[0]
    if isinstance(raw, _Text):
        return str(raw)
    if not isinstance(raw, _Native):
        return raw
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, MemoryError, TypeError):
        value = str(raw)
    if isinstance(raw, _Bool) and not isinstance(value, bool):
        raise ConfigError(f"could not convert value '{raw}' into type 'bool'")
    if isinstance(raw, _Number) and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ConfigError(f"could not convert value '{raw}' into type 'number'")
    return value


class _ProfileEnvironment(SandboxedEnvironment):
    """A sandbox that keeps rendered values' types (dbt's native rendering of profiles)."""

    code_generator_class = NativeCodeGenerator
    concat = staticmethod(_native_concat)  # type: ignore[assignment]


def _renderer(environ: Mapping[str, str]) -> SandboxedEnvironment:
    env = _ProfileEnvironment(undefined=StrictUndefined)

    def env_var(name: str, default: Any = None) -> Any:
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"profiles.yml needs the environment variable {name}, which is not set")

    env.globals["env_var"] = env_var
    env.filters.update(as_text=_Text, as_native=_Native, as_bool=_Bool, as_number=_Number)
    return env


def _render(value: Any, env: SandboxedEnvironment, key: str) -> Any:
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        try:
            return env.from_string(value).render()
        except TemplateError as exc:
            raise ConfigError(f"cannot render profiles.yml key '{key}': {exc.message}") from None
        except ConfigError as exc:
            if key.endswith((".password", ".pass")):  # the message would quote the value
                raise ConfigError(f"cannot render profiles.yml key '{key}'") from None
            raise ConfigError(f"cannot render profiles.yml key '{key}': {exc}") from None
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
    project_dir = cwd if (cwd / "dbt_project.yml").is_file() else None
    manifest = manifest_path(project_dir, environ) if project_dir is not None else None
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
    if kind == "postgres":
        return dataclasses.replace(_postgres_target(name, target, output), project_dir=project_dir,
                                   manifest_path=manifest)
    if kind == "spark":
        return dataclasses.replace(_spark_target(name, target, output, environ),
                                   project_dir=project_dir, manifest_path=manifest)
    if kind == "snowflake":
        return dataclasses.replace(_snowflake_target(name, target, output), project_dir=project_dir,
                                   manifest_path=manifest)
    if kind not in SUPPORTED_TYPES:
        raise ConfigError(
            f"warehouse type '{kind or '?'}' (target '{target}') is not supported; "
            f"the sender supports {', '.join(SUPPORTED_TYPES)} targets"
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
        profile=name, target=target, type=kind, schema=schema, path=db_path, options=options,
        project_dir=project_dir, manifest_path=manifest,
    )


def _text(output: Mapping[str, Any], *keys: str) -> str:
    """The first of `keys` present in the target, as a stripped string ('' when none is)."""
    for key in keys:
        value = output.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def _postgres_target(profile: str, target: str, output: Mapping[str, Any]) -> WarehouseTarget:
    """A postgres target, checked the way dbt-postgres checks its credentials."""
    where = f"postgres target '{target}'"
    host, user = _text(output, "host"), _text(output, "user")
    dbname, schema = _text(output, "dbname", "database"), _text(output, "schema")
    missing = [key for key, value in (("host", host), ("user", user), ("dbname", dbname),
                                      ("schema", schema)) if not value]
    if missing:
        raise ConfigError(f"{where} needs {', '.join(f'`{k}`' for k in missing)} in profiles.yml")
    port = output.get("port", POSTGRES_DEFAULT_PORT)
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}: port must be a number from 1 to 65535, got {port!r}")
    raw_password = output.get("password", output.get("pass"))
    password = Secret(str(raw_password)) if raw_password not in (None, "") else None
    options: dict[str, Any] = {"host": host, "port": port, "user": user, "dbname": dbname}
    options.update({k: output[k] for k in POSTGRES_OPTIONS if output.get(k) not in (None, "")})
    return WarehouseTarget(
        profile=profile, target=target, type="postgres", schema=schema, path=None,
        options=options, password=password,
    )


def _spark_target(profile: str, target: str, output: Mapping[str, Any],
                  environ: Mapping[str, str]) -> WarehouseTarget:
    """A spark target, read through Spark Connect: the server of `spark.remote` in its
    `server_side_parameters` (how dbt-spark's session method reaches one), else SPARK_REMOTE."""
    where = f"spark target '{target}'"
    schema = _text(output, "schema")
    if not schema:
        raise ConfigError(f"{where} needs `schema` in profiles.yml")
    parameters = output.get("server_side_parameters")
    parameters = parameters if isinstance(parameters, Mapping) else {}
    remote = str(parameters.get("spark.remote") or environ.get("SPARK_REMOTE") or "").strip()
    if not remote.startswith("sc://"):
        raise ConfigError(
            f"{where}: the sender reads Spark through Spark Connect; set `spark.remote: sc://host:port` "
            "in its server_side_parameters (method: session) or SPARK_REMOTE"
        )
    # A Spark Connect URL may carry a bearer token (`;token=...`): it is held as the target's
    # secret, and the URL kept in `options` shows *** in its place (`spark_remote` puts it back).
    token = re.search(r";token=([^;]+)", remote)
    if token:
        remote = remote[:token.start(1)] + REDACTED + remote[token.end(1):]
    return WarehouseTarget(profile=profile, target=target, type="spark", schema=schema, path=None,
                           options={"remote": remote},
                           password=Secret(token.group(1)) if token else None)


def _snowflake_target(profile: str, target: str, output: Mapping[str, Any]) -> WarehouseTarget:
    """A snowflake target, with dbt-snowflake's keys: account, database and schema required; user
    and password, or an `authenticator` (externalbrowser, oauth with `token`, snowflake_jwt with a
    private key, username_password_mfa, an Okta URL). Its secrets are held as Secrets."""
    where = f"snowflake target '{target}'"
    missing = [k for k in ("account", "database", "schema") if not _text(output, k)]
    if missing:
        raise ConfigError(f"{where} needs {', '.join(f'`{k}`' for k in missing)} in profiles.yml")
    options: dict[str, Any] = {k: output[k] for k in SNOWFLAKE_OPTIONS if output.get(k) not in (None, "")}
    port = options.get("port")
    if port is not None and (isinstance(port, bool) or not str(port).strip().isdigit()
                             or not 0 < int(port) < 65536):
        raise ConfigError(f"{where}: port must be a number from 1 to 65535, got {port!r}")
    raw_password = output.get("password")
    password = Secret(str(raw_password)) if raw_password not in (None, "") else None
    credentials = {k: Secret(str(output[k])) for k in SNOWFLAKE_SECRETS if output.get(k) not in (None, "")}
    return WarehouseTarget(profile=profile, target=target, type="snowflake",
                           schema=_text(output, "schema"), path=None, options=options,
                           password=password, credentials=credentials)


def spark_remote(target: WarehouseTarget) -> str:
    """The Spark Connect URL of a spark target to connect with, its token in place."""
    remote = str(target.options.get("remote") or "")
    if target.password is None:
        return remote
    return remote.replace(f";token={REDACTED}", f";token={target.password.reveal()}", 1)
