"""The dbt project's hygiene rules, checked over dbt's manifest (`make lint`, after `dbt parse`).

dbt-project-evaluator cannot be installed here (no package hub), so the rules of it this project
holds itself to, and a few of its own, are written out below; each prints one line per violation,
`<rule>: <node>: <what is wrong>`, and any violation exits 1.

    python scripts/check_project.py [--manifest target/manifest.json] [--project-dir .]

Rules (README, "Project rules"):
- model_description: every model has a description.
- column_description: every column a model's YAML lists has a description; with --catalog
  (target/catalog.json of `dbt docs generate`), every column the built model has is listed.
- primary_key: every model has a tested grain: dbt's `unique` and `not_null` on one column, or,
  for a composite grain, the project's `unique_combination` test over its columns (what
  dbt-project-evaluator accepts from dbt_utils.unique_combination_of_columns; add
  `["tiktok_outbox.test_unique_combination"]` to its primary_key_test_macros to run it there).
- source_freshness: every source table has a freshness (warn_after or error_after) and a
  loaded_at_field or loaded_at_query, unless its `meta.freshness_exempt` says why it has none.
- source_config_form: freshness and loaded_at_field are set under `config:` (dbt 1.10+), not
  at the top level of a source or table.
- source_vars: every source's database and schema, and every table's identifier, is a var.
- source_outside_staging: only staging models call source().
- staging_to_staging: no staging model refs another staging model.
- staging_to_downstream: no staging model refs an intermediate model or a mart.
- model_naming: models under models/staging are named stg_, under models/intermediate int_.
- model_group: every model belongs to a group.
- public_contract: every public model has an enforced contract.
- hard_coded_reference: no model selects from a relation named in the SQL instead of ref() or
  source().
- var_declared: every var() the project's SQL and YAML read is declared, with its default, in
  dbt_project.yml; every declared var is read somewhere (a stale declaration misleads).
- shared_description: a column description written out in more than one YAML file is a docs
  block instead (models/docs.md).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

PROJECT = "tiktok_outbox"
COMPOSITE_KEY_TEST = "unique_combination"
# where var() may be read: the dbt project's own files
VAR_PATHS = ("models", "macros", "tests", "seeds", "analyses", "snapshots", "dbt_project.yml",
             "sender/src/tiktok_sender/reference")
VAR_SKIP = ("tests/python",)
VAR_CALL = re.compile(r"""\bvar\(\s*['"](\w+)['"]""")
# `from schema.table` / `join db.schema.table` outside Jinja: a relation named in the SQL
HARD_CODED = re.compile(r"\b(?:from|join)\s+((?:[A-Za-z_][\w$]*\.){1,2}[A-Za-z_][\w$]*)\b", re.IGNORECASE)
# shorter descriptions ("Id of the run.") may repeat without a docs block
SHARED_DESCRIPTION_MIN_CHARS = 40


def violation(rule: str, node: str, message: str) -> str:
    return f"{rule}: {node}: {message}"


def own(items: dict[str, dict], resource_type: str) -> Iterator[dict]:
    for node in items.values():
        if node.get("resource_type") == resource_type and node.get("package_name") == PROJECT:
            yield node


def layer(node: dict) -> str | None:
    parts = node.get("original_file_path", "").split("/")
    if len(parts) > 2 and parts[0] == "models" and parts[1] in ("staging", "intermediate", "marts"):
        return parts[1]
    return None


# -- models -------------------------------------------------------------------------------------

def check_model_descriptions(manifest: dict) -> Iterator[str]:
    for node in own(manifest["nodes"], "model"):
        if not (node.get("description") or "").strip():
            yield violation("model_description", node["unique_id"], "no description")


def check_column_descriptions(manifest: dict, catalog: dict | None = None) -> Iterator[str]:
    for node in own(manifest["nodes"], "model"):
        if not node.get("columns"):
            yield violation("column_description", node["unique_id"], "no column is documented")
        for name, column in node.get("columns", {}).items():
            if not (column.get("description") or "").strip():
                yield violation("column_description", node["unique_id"], f"column {name} has no description")
        if catalog is not None and node["unique_id"] in catalog.get("nodes", {}):
            documented = {c.lower() for c in node.get("columns", {})}
            for name in catalog["nodes"][node["unique_id"]].get("columns", {}):
                if name.lower() not in documented:
                    yield violation("column_description", node["unique_id"], f"column {name} is not documented")


def tests_by_model(manifest: dict) -> dict[str, list[dict]]:
    attached: dict[str, list[dict]] = defaultdict(list)
    for node in manifest["nodes"].values():
        if node.get("resource_type") == "test" and node.get("test_metadata") and node.get("attached_node"):
            attached[node["attached_node"]].append(node)
    return attached


def test_column(test: dict) -> str | None:
    column = test.get("column_name") or test["test_metadata"].get("kwargs", {}).get("column_name")
    return column.strip('"`').lower() if column else None


def tested_grain(tests: list[dict]) -> list[str] | None:
    """The columns of the model's tested grain, or None."""
    unique = {test_column(t) for t in tests if t["test_metadata"]["name"] == "unique"}
    not_null = {test_column(t) for t in tests if t["test_metadata"]["name"] == "not_null"}
    single = sorted(c for c in unique & not_null if c)
    if single:
        return single[:1]
    for test in tests:
        meta = test["test_metadata"]
        if meta["name"] == COMPOSITE_KEY_TEST and meta.get("namespace") in (PROJECT, None):
            columns = [c.lower() for c in meta.get("kwargs", {}).get("columns") or []]
            if columns:
                return columns
    return None


def check_primary_keys(manifest: dict) -> Iterator[str]:
    attached = tests_by_model(manifest)
    for node in own(manifest["nodes"], "model"):
        tests = [t for t in attached.get(node["unique_id"], []) if t.get("config", {}).get("enabled", True)]
        if tested_grain(tests) is None:
            yield violation("primary_key", node["unique_id"],
                            "no tested grain: unique + not_null on one column, or unique_combination over its columns")


def check_layers(manifest: dict) -> Iterator[str]:
    nodes = manifest["nodes"]
    for node in own(nodes, "model"):
        where = layer(node)
        uid = node["unique_id"]
        sources = node.get("depends_on", {}).get("nodes", [])
        if any(d.startswith("source.") for d in sources) and where != "staging":
            yield violation("source_outside_staging", uid, "calls source() outside models/staging")
        if where == "staging":
            if not node["name"].startswith("stg_"):
                yield violation("model_naming", uid, "a staging model's name starts with stg_")
            for parent in sources:
                parent_node = nodes.get(parent)
                if not parent_node or parent_node.get("resource_type") != "model":
                    continue
                parent_layer = layer(parent_node)
                if parent_layer == "staging":
                    yield violation("staging_to_staging", uid, f"refs the staging model {parent_node['name']}")
                elif parent_layer in ("intermediate", "marts"):
                    yield violation("staging_to_downstream", uid,
                                    f"refs the {parent_layer} model {parent_node['name']}")
        if where == "intermediate" and not node["name"].startswith("int_"):
            yield violation("model_naming", uid, "an intermediate model's name starts with int_")


def check_groups_and_contracts(manifest: dict) -> Iterator[str]:
    for node in own(manifest["nodes"], "model"):
        if not node.get("group"):
            yield violation("model_group", node["unique_id"], "belongs to no group")
        if node.get("access") == "public" and not node.get("config", {}).get("contract", {}).get("enforced"):
            yield violation("public_contract", node["unique_id"], "is public without an enforced contract")


def check_hard_coded_references(manifest: dict) -> Iterator[str]:
    for node in own(manifest["nodes"], "model"):
        code = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", node.get("raw_code", ""), flags=re.DOTALL)
        code = re.sub(r"--[^\n]*", " ", code)
        for match in HARD_CODED.finditer(code):
            yield violation("hard_coded_reference", node["unique_id"],
                            f"selects from {match.group(1)}, not ref()/source()")


# -- sources ------------------------------------------------------------------------------------

def check_source_freshness(manifest: dict) -> Iterator[str]:
    for source in own(manifest["sources"], "source"):
        config = source.get("config") or {}
        if (source.get("meta") or {}).get("freshness_exempt") or (config.get("meta") or {}).get("freshness_exempt"):
            continue
        freshness = config.get("freshness") or source.get("freshness") or {}
        if not any((freshness.get(k) or {}).get("count") for k in ("warn_after", "error_after")):
            yield violation("source_freshness", source["unique_id"], "no freshness (warn_after / error_after)")
        if not (config.get("loaded_at_field") or config.get("loaded_at_query")
                or source.get("loaded_at_field") or source.get("loaded_at_query")):
            yield violation("source_freshness", source["unique_id"], "no loaded_at_field or loaded_at_query")


def source_files(manifest: dict, project_dir: Path) -> dict[str, dict]:
    files = {s["original_file_path"] for s in own(manifest["sources"], "source")}
    return {path: yaml.safe_load((project_dir / path).read_text()) or {} for path in sorted(files)
            if (project_dir / path).exists()}


def check_source_yaml(manifest: dict, project_dir: Path) -> Iterator[str]:
    """Rules on the YAML as written (the manifest holds the rendered names and merged configs)."""
    for path, doc in source_files(manifest, project_dir).items():
        for source in doc.get("sources") or []:
            name = f"source.{PROJECT}.{source['name']}"
            for key in ("freshness", "loaded_at_field", "loaded_at_query"):
                if key in source:
                    yield violation("source_config_form", name, f"{key} at the top level, not under config: ({path})")
            for key in ("database", "schema"):
                if "var(" not in str(source.get(key, "")):
                    yield violation("source_vars", name, f"{key} is not a var ({path})")
            for table in source.get("tables") or []:
                table_name = f"{name}.{table['name']}"
                for key in ("freshness", "loaded_at_field", "loaded_at_query"):
                    if key in table:
                        yield violation("source_config_form", table_name,
                                        f"{key} at the top level, not under config: ({path})")
                if "var(" not in str(table.get("identifier", "")):
                    yield violation("source_vars", table_name, f"identifier is not a var ({path})")


# -- vars ---------------------------------------------------------------------------------------

def files_reading_vars(project_dir: Path) -> Iterable[Path]:
    for entry in VAR_PATHS:
        path = project_dir / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(project_dir).as_posix()
                if file.suffix in (".sql", ".yml", ".yaml", ".md") and not relative.startswith(VAR_SKIP):
                    yield file


def check_vars(project_dir: Path) -> Iterator[str]:
    declared = (yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}).get("vars") or {}
    used: dict[str, str] = {}
    for file in files_reading_vars(project_dir):
        for name in VAR_CALL.findall(file.read_text()):
            used.setdefault(name, file.relative_to(project_dir).as_posix())
    for name, where in sorted(used.items()):
        if name not in declared:
            yield violation("var_declared", name, f"read in {where} but not declared in dbt_project.yml vars")
    for name in sorted(set(declared) - set(used)):
        if not isinstance(declared[name], dict):  # a package-scoped block is not a var
            yield violation("var_declared", name, "declared in dbt_project.yml but never read")


# -- descriptions -------------------------------------------------------------------------------

def check_shared_descriptions(manifest: dict, project_dir: Path) -> Iterator[str]:
    """The same column description written in more than one YAML file (doc() calls excluded)."""
    seen: dict[str, set[str]] = defaultdict(set)
    columns_of: dict[str, set[str]] = defaultdict(set)
    files = {n["patch_path"].split("://", 1)[-1] for n in own(manifest["nodes"], "model") if n.get("patch_path")}
    for path in sorted(files):
        file = project_dir / path
        if not file.exists():
            continue
        for model in (yaml.safe_load(file.read_text()) or {}).get("models") or []:
            for column in model.get("columns") or []:
                text = " ".join(str(column.get("description") or "").split())
                if len(text) >= SHARED_DESCRIPTION_MIN_CHARS and "doc(" not in text:
                    seen[text].add(path)
                    columns_of[text].add(column["name"])
    for text, paths in sorted(seen.items()):
        if len(paths) > 1:
            yield violation("shared_description", ", ".join(sorted(columns_of[text])),
                            f"described alike in {len(paths)} files ({', '.join(sorted(paths))}): use a docs block")


def check(manifest: dict, project_dir: Path | None = None, catalog: dict | None = None) -> list[str]:
    found: list[str] = []
    found += check_model_descriptions(manifest)
    found += check_column_descriptions(manifest, catalog)
    found += check_primary_keys(manifest)
    found += check_layers(manifest)
    found += check_groups_and_contracts(manifest)
    found += check_hard_coded_references(manifest)
    found += check_source_freshness(manifest)
    if project_dir is not None:
        found += check_source_yaml(manifest, project_dir)
        found += check_vars(project_dir)
        found += check_shared_descriptions(manifest, project_dir)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--project-dir", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--manifest", type=Path, help="default: <project-dir>/target/manifest.json")
    parser.add_argument("--catalog", type=Path,
                        help="target/catalog.json of `dbt docs generate`: check the built columns too")
    args = parser.parse_args(argv)
    manifest_path = args.manifest or args.project_dir / "target" / "manifest.json"
    if not manifest_path.exists():
        print(f"no manifest at {manifest_path}: run `dbt parse` first", file=sys.stderr)
        return 2
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    catalog = json.loads(args.catalog.read_text()) if args.catalog else None
    found = check(manifest, args.project_dir, catalog)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} violation(s) of the project rules (scripts/check_project.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
