"""Where the sender reads the outbox and writes its receipts and runs: where dbt has them.

dbt builds the outbox wherever the project's configuration puts it (a custom schema may move
it), and reads the delivery tables from the `tiktok_delivery` source, whose schema is
`var('tiktok_delivery_schema') or target.schema`. The sender takes the same names, in this order:

1. dbt's manifest (`WarehouseTarget.manifest_path`, `target/manifest.json` of the project in the
   current directory), when it exists: the model `tiktok_events_outbox` (its `schema` and
   `alias`) and the sources `tiktok_delivery.tiktok_delivery_receipts` / `..._runs` (their
   `schema` and `identifier`). The manifest must have been written for this warehouse: its
   adapter must be the target's type and each relation's `database` the one the sender is
   connected to (PostgreSQL: the target's dbname; DuckDB: the catalog of the opened file, which
   dbt-duckdb names after the file). A manifest that cannot be read, lacks these relations or
   describes another warehouse stops the run with one line (ConfigError): run `dbt parse` for
   this target, or delete it. It is never silently passed over: receipts written in one place
   and looked for in another would make every event pending again.
2. Without a manifest, the project var `tiktok_delivery_schema` of dbt_project.yml (global, or
   scoped to the project or to the `tiktok_outbox` package) when it is a plain string; the outbox
   is then in the target's schema. A Jinja expression cannot be evaluated here: it is logged, and
   the target's schema is used.
3. Else the target's schema for all three.

Every name is validated and quoted (`quote_identifier`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from tiktok_sender.errors import ConfigError
from tiktok_sender.profiles import WarehouseTarget, dbt_project
from tiktok_sender.tables.outbox import OUTBOX_TABLE
from tiktok_sender.tables.receipts import RECEIPTS_TABLE, RUNS_TABLE
from tiktok_sender.warehouse.support import quote_identifier

log = logging.getLogger("tiktok_sender")

DELIVERY_SOURCE: Final = "tiktok_delivery"
DELIVERY_SCHEMA_VAR: Final = "tiktok_delivery_schema"
RECEIPTS_IDENTIFIER_VAR: Final = "tiktok_delivery_receipts_identifier"
RUNS_IDENTIFIER_VAR: Final = "tiktok_delivery_runs_identifier"
PACKAGE: Final = "tiktok_outbox"  # this project's name, when it is installed as a package
_FIX: Final = "run `dbt parse` (or `dbt build`) with this target to rewrite it, or delete it"


@dataclass(frozen=True)
class Relation:
    """A table: its schema and name (both plain identifiers, checked)."""

    schema: str
    name: str

    def __post_init__(self) -> None:
        quote_identifier(self.schema)
        quote_identifier(self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql(self) -> str:
        """The quoted `"schema"."name"`."""
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"


@dataclass(frozen=True)
class DeliveryRelations:
    """The three tables of a delivery, and where their names came from."""

    outbox: Relation
    receipts: Relation
    runs: Relation
    origin: str
    """`dbt's manifest <path>`, `var tiktok_delivery_schema of <dbt_project.yml>` or
    `the target's schema`."""


def resolve_relations(target: WarehouseTarget, *, database: str) -> DeliveryRelations:
    """The outbox, receipts and runs tables of `target` (see the module docstring), checked
    against `database`, the database the sender is connected to. Logs where they came from."""
    manifest = target.manifest_path
    if manifest is not None and manifest.is_file():
        relations = _from_manifest(manifest, target, database)
    else:
        relations = _from_project(target)
    # Only a choice beyond the target's schema is news worth a line at the default level.
    level = logging.DEBUG if relations.origin == "the target's schema" else logging.INFO
    log.log(level, "outbox %s, receipts %s, runs %s (from %s)",
            relations.outbox, relations.receipts, relations.runs, relations.origin)
    return relations


def moved_receipts(
    relations: DeliveryRelations, target_schema: str, exists: Callable[[Relation], bool]
) -> str | None:
    """Why a receipts table must not be started afresh where `relations` have it, or None.

    A sender that did not follow dbt wrote its receipts to the target's schema. Were a receipts
    table now created elsewhere while those are left behind, every event they settled would be
    pending again, and sent again. `exists` says whether a table exists."""
    receipts, legacy = relations.receipts, Relation(target_schema, RECEIPTS_TABLE)
    if receipts == legacy or exists(receipts) or not exists(legacy):
        return None
    return (
        f"the receipts table is {receipts} (from {relations.origin}) and does not exist, but "
        f"{legacy} does, from earlier runs: move the receipts and runs tables to schema "
        f"{receipts.schema} (e.g. `alter table {legacy} set schema {receipts.schema}`) so that "
        "delivered events are not sent again"
    )


def _from_project(target: WarehouseTarget) -> DeliveryRelations:
    """Without dbt's manifest: the delivery tables' schema and names from the plain values of the
    project's vars (dbt_project.yml), else the target's schema and the default names."""
    data = dbt_project(target.project_dir) if target.project_dir is not None else None
    schema = _plain_var(data, target, DELIVERY_SCHEMA_VAR, target.schema)
    receipts = _plain_var(data, target, RECEIPTS_IDENTIFIER_VAR, RECEIPTS_TABLE)
    runs = _plain_var(data, target, RUNS_IDENTIFIER_VAR, RUNS_TABLE)
    origin = (f"var {DELIVERY_SCHEMA_VAR} of {target.project_dir / 'dbt_project.yml'}"
              if schema != target.schema and target.project_dir is not None else "the target's schema")
    outbox = Relation(target.schema, OUTBOX_TABLE)
    return DeliveryRelations(outbox, Relation(schema, receipts), Relation(schema, runs), origin)


def _plain_var(data: dict[str, Any] | None, target: WarehouseTarget, name: str, default: str) -> str:
    """The var `name` of dbt_project.yml (the project's scope, the package's, then the global
    one) when it is a plain name; `default` when unset. A templated value cannot be evaluated
    without dbt: said, and `default` used."""
    if data is None:
        return default
    variables = data.get("vars") if isinstance(data.get("vars"), dict) else {}
    scopes = [variables.get(data.get("name")), variables.get(PACKAGE), variables]
    value = next((s[name] for s in scopes if isinstance(s, dict) and name in s), None)
    if isinstance(value, str) and value.strip() and "{{" not in value and "{%" not in value:
        return value.strip()
    if value not in (None, ""):
        log.warning(
            "var %s of dbt_project.yml is not a plain name (%r): without dbt's manifest the sender "
            "cannot evaluate it, and uses %s (run `dbt parse` to write the manifest)", name, value, default)
    return default


def _from_manifest(path: Path, target: WarehouseTarget, database: str) -> DeliveryRelations:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not valid JSON"
        raise ConfigError(f"cannot read dbt's manifest {path}: {reason}; {_FIX}") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), dict) for k in ("metadata", "nodes", "sources")
    ):
        raise ConfigError(f"{path} is not a dbt manifest (no metadata, nodes or sources); {_FIX}")
    adapter = data["metadata"].get("adapter_type")
    if adapter is not None and adapter != target.type:
        raise ConfigError(
            f"dbt's manifest {path} was written for a {adapter} target, not for the {target.type} "
            f"target '{target.target}'; {_FIX}"
        )
    project = data["metadata"].get("project_name")
    nodes = [n for n in data["nodes"].values() if isinstance(n, dict)]
    sources = [n for n in data["sources"].values() if isinstance(n, dict)]
    outbox = _pick(path, project, f"model {OUTBOX_TABLE}", [
        n for n in nodes if n.get("resource_type") == "model" and n.get("name") == OUTBOX_TABLE])
    if (outbox.get("config") or {}).get("materialized") == "ephemeral":
        raise ConfigError(f"dbt's manifest {path}: model {OUTBOX_TABLE} is ephemeral; the sender "
                          "reads a table")
    found = {"outbox": outbox}
    for key, table in (("receipts", RECEIPTS_TABLE), ("runs", RUNS_TABLE)):
        found[key] = _pick(path, project, f"source {DELIVERY_SOURCE}.{table}", [
            n for n in sources
            if n.get("source_name") == DELIVERY_SOURCE and n.get("name") == table])
    relations = {key: _relation(path, node, target, database) for key, node in found.items()}
    return DeliveryRelations(relations["outbox"], relations["receipts"], relations["runs"],
                             f"dbt's manifest {path}")


def _pick(path: Path, project: Any, what: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The one node among `candidates`: the root project's before a package's, this package's
    before another's, a versioned model's latest version."""
    if not candidates:
        raise ConfigError(
            f"dbt's manifest {path} has no {what} (it is older than the project?); {_FIX}")
    for narrowed in (
        [n for n in candidates if n.get("package_name") == project],
        [n for n in candidates if n.get("package_name") == PACKAGE],
    ):
        if narrowed:
            candidates = narrowed
            break
    if len(candidates) > 1:
        latest = [n for n in candidates if n.get("version") is not None
                  and n.get("version") == n.get("latest_version")]
        candidates = latest or candidates
    if len(candidates) > 1:
        ids = ", ".join(sorted(str(n.get("unique_id")) for n in candidates))
        raise ConfigError(f"dbt's manifest {path} has several {what}: {ids}")
    return candidates[0]


def _relation(path: Path, node: dict[str, Any], target: WarehouseTarget, database: str) -> Relation:
    what = str(node.get("unique_id") or node.get("name"))
    schema = node.get("schema")
    name = node.get("alias") or node.get("identifier") or node.get("name")
    if not isinstance(schema, str) or not isinstance(name, str):
        raise ConfigError(f"dbt's manifest {path}: {what} has no schema or name; {_FIX}")
    found = node.get("database")
    if found is not None:
        # PostgreSQL compares database names exactly; DuckDB's catalog names ignore case.
        if target.type == "postgres":
            same = found == database
        else:
            same = str(found).lower() == database.lower()
        if not same:
            raise ConfigError(
                f"dbt's manifest {path} puts {what} in database {found}, but the sender is "
                f"connected to database {database}; {_FIX}"
            )
    return Relation(schema, name)
