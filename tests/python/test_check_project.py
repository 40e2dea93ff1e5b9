"""scripts/check_project.py: each rule on a small manifest written here, then the real project.

The fabricated manifest holds only the fields the script reads; a clean one passes, and each
test breaks one rule and expects that rule's line, and no other.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from scripts_loader import load_script

from dbt_harness import PROJECT_ROOT, run_dbt

check_project = load_script("check_project")

P = "tiktok_outbox"


def model(name: str, path: str, *, parents: tuple[str, ...] = (), columns: dict | None = None,
          access: str = "protected", contract: bool = False, raw_code: str = "select 1 as id") -> dict:
    return {
        "unique_id": f"model.{P}.{name}", "resource_type": "model", "package_name": P, "name": name,
        "original_file_path": path, "patch_path": f"{P}://{path.rsplit('.', 1)[0]}.yml",
        "description": f"The {name} model.", "group": P, "access": access,
        "config": {"contract": {"enforced": contract}, "enabled": True},
        "columns": columns if columns is not None else {"id": {"description": "Key.", "constraints": []}},
        "depends_on": {"nodes": list(parents)}, "raw_code": raw_code,
    }


def key_test(name: str, attached: str, column: str | None = None, kwargs: dict | None = None,
              namespace: str | None = None) -> dict:
    return {
        "unique_id": f"test.{P}.{name}_{attached}_{column}", "resource_type": "test", "package_name": P,
        "attached_node": f"model.{P}.{attached}", "column_name": column, "config": {"enabled": True},
        "test_metadata": {"name": name, "namespace": namespace, "kwargs": kwargs or {}},
    }


def source(table: str, **config: object) -> dict:
    return {
        "unique_id": f"source.{P}.raw.{table}", "resource_type": "source", "package_name": P,
        "name": table, "source_name": "raw", "original_file_path": "models/staging/raw/_raw__sources.yml",
        "meta": {}, "config": {"freshness": {"warn_after": {"count": 1, "period": "day"}},
                               "loaded_at_field": "updated_at", **config},
    }


def clean_manifest() -> dict:
    nodes = {}
    for node in (
        model("stg_raw__orders", "models/staging/raw/stg_raw__orders.sql", parents=(f"source.{P}.raw.orders",)),
        model("int_orders_enriched", "models/intermediate/int_orders_enriched.sql",
              parents=(f"model.{P}.stg_raw__orders",)),
        model("orders_daily", "models/marts/orders_daily.sql", parents=(f"model.{P}.int_orders_enriched",),
              columns={"day": {"description": "Day."}, "shop": {"description": "Shop."}}),
        model("orders_outbox", "models/marts/orders_outbox.sql", parents=(f"model.{P}.int_orders_enriched",),
              access="public", contract=True),
    ):
        nodes[node["unique_id"]] = node
    for name in ("stg_raw__orders", "int_orders_enriched", "orders_outbox"):
        for t in (key_test("unique", name, "id"), key_test("not_null", name, "id")):
            nodes[t["unique_id"]] = t
    composite = key_test("unique_combination", "orders_daily", kwargs={"columns": ["day", "shop"]}, namespace=P)
    nodes[composite["unique_id"]] = composite
    return {"nodes": nodes, "sources": {s["unique_id"]: s for s in (source("orders"),)}}


def rules(found: list[str]) -> list[str]:
    return [line.split(":", 1)[0] for line in found]


def test_a_clean_manifest_passes() -> None:
    assert check_project.check(clean_manifest()) == []


def test_a_model_without_description_or_column_descriptions() -> None:
    manifest = clean_manifest()
    node = manifest["nodes"][f"model.{P}.orders_daily"]
    node["description"] = " "
    node["columns"]["shop"]["description"] = ""
    found = check_project.check(manifest)
    assert found == [
        f"model_description: model.{P}.orders_daily: no description",
        f"column_description: model.{P}.orders_daily: column shop has no description",
    ]


def test_the_catalog_names_columns_the_yaml_does_not() -> None:
    catalog = {"nodes": {f"model.{P}.orders_daily": {"columns": {"DAY": {}, "shop": {}, "revenue": {}}}}}
    assert check_project.check(clean_manifest(), catalog=catalog) == [
        f"column_description: model.{P}.orders_daily: column revenue is not documented"]


@pytest.mark.parametrize("drop", ["unique", "not_null"])
def test_a_single_column_key_needs_unique_and_not_null(drop: str) -> None:
    manifest = clean_manifest()
    del manifest["nodes"][f"test.{P}.{drop}_stg_raw__orders_id"]
    assert rules(check_project.check(manifest)) == ["primary_key"]


def test_unique_and_not_null_on_different_columns_is_no_key() -> None:
    manifest = clean_manifest()
    manifest["nodes"][f"test.{P}.not_null_stg_raw__orders_id"]["column_name"] = "other"
    assert rules(check_project.check(manifest)) == ["primary_key"]


def test_a_composite_grain_counts_and_a_disabled_key_test_does_not() -> None:
    manifest = clean_manifest()
    manifest["nodes"][f"test.{P}.unique_combination_orders_daily_None"]["config"]["enabled"] = False
    found = check_project.check(manifest)
    assert found == [f"primary_key: model.{P}.orders_daily: no tested grain: unique + not_null on one column, "
                     "or unique_combination over its columns"]


def test_only_staging_calls_source_and_staging_reads_no_model() -> None:
    manifest = clean_manifest()
    nodes = manifest["nodes"]
    nodes[f"model.{P}.int_orders_enriched"]["depends_on"]["nodes"].append(f"source.{P}.raw.orders")
    other = model("stg_raw__refunds", "models/staging/raw/stg_raw__refunds.sql",
                  parents=(f"model.{P}.stg_raw__orders", f"model.{P}.orders_daily"))
    nodes[other["unique_id"]] = other
    for t in (key_test("unique", "stg_raw__refunds", "id"), key_test("not_null", "stg_raw__refunds", "id")):
        nodes[t["unique_id"]] = t
    assert sorted(rules(check_project.check(manifest))) == [
        "source_outside_staging", "staging_to_downstream", "staging_to_staging"]


def test_layer_prefixes() -> None:
    manifest = clean_manifest()
    manifest["nodes"][f"model.{P}.int_orders_enriched"]["name"] = "orders_enriched"
    assert rules(check_project.check(manifest)) == ["model_naming"]


def test_groups_and_public_contracts() -> None:
    manifest = clean_manifest()
    manifest["nodes"][f"model.{P}.orders_daily"]["group"] = None
    manifest["nodes"][f"model.{P}.orders_outbox"]["config"]["contract"]["enforced"] = False
    assert sorted(rules(check_project.check(manifest))) == ["model_group", "public_contract"]


def test_a_relation_named_in_sql() -> None:
    manifest = clean_manifest()
    node = manifest["nodes"][f"model.{P}.orders_daily"]
    node["raw_code"] = ("-- from raw.comments is fine\nselect * from {{ ref('int_orders_enriched') }}\n"
                        "join analytics.shops using (shop)")
    assert check_project.check(manifest) == [
        f"hard_coded_reference: model.{P}.orders_daily: selects from analytics.shops, not ref()/source()"]


def test_source_freshness_and_its_exemption() -> None:
    manifest = clean_manifest()
    broken = source("refunds", freshness=None, loaded_at_field=None)
    exempt = source("register", freshness=None, loaded_at_field=None, meta={"freshness_exempt": "edited by hand"})
    manifest["sources"].update({s["unique_id"]: s for s in (broken, exempt)})
    assert check_project.check(manifest) == [
        f"source_freshness: source.{P}.raw.refunds: no freshness (warn_after / error_after)",
        f"source_freshness: source.{P}.raw.refunds: no loaded_at_field or loaded_at_query",
    ]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


SOURCES_OK = """
sources:
  - name: raw
    database: "{{ var('raw_database') }}"
    schema: "{{ var('raw_schema') }}"
    config: {freshness: {warn_after: {count: 1, period: day}}}
    tables:
      - name: orders
        identifier: "{{ var('raw_orders_identifier') }}"
        config: {loaded_at_field: updated_at}
"""

PROJECT_OK = """
name: tiktok_outbox
vars:
  raw_database: null
  raw_schema: raw
  raw_orders_identifier: orders
"""


def test_source_yaml_as_written(tmp_path: Path) -> None:
    write(tmp_path, {"dbt_project.yml": PROJECT_OK, "models/staging/raw/_raw__sources.yml": SOURCES_OK})
    assert check_project.check(clean_manifest(), tmp_path) == []
    old_style = (SOURCES_OK.replace("        identifier: \"{{ var('raw_orders_identifier') }}\"\n", "")
                 .replace("config: {loaded_at_field: updated_at}", "loaded_at_field: updated_at")
                 .replace("schema: \"{{ var('raw_schema') }}\"", "schema: raw"))
    write(tmp_path, {"models/staging/raw/_raw__sources.yml": old_style})
    assert check_project.check(clean_manifest(), tmp_path) == [
        f"source_vars: source.{P}.raw: schema is not a var (models/staging/raw/_raw__sources.yml)",
        f"source_config_form: source.{P}.raw.orders: loaded_at_field at the top level, not under config: "
        "(models/staging/raw/_raw__sources.yml)",
        f"source_vars: source.{P}.raw.orders: identifier is not a var (models/staging/raw/_raw__sources.yml)",
        "var_declared: raw_orders_identifier: declared in dbt_project.yml but never read",
        "var_declared: raw_schema: declared in dbt_project.yml but never read",
    ]


def test_vars_read_and_declared(tmp_path: Path) -> None:
    write(tmp_path, {
        "dbt_project.yml": PROJECT_OK + "  stale_setting: 3\n  tiktok_outbox: {scoped: 1}\n",
        "models/staging/raw/_raw__sources.yml": SOURCES_OK,
        "macros/window.sql": "{% macro window() %}{{ var(\"window_days\", 7) }}{% endmacro %}",
        "tests/python/fixture.sql": "select {{ var('python_only') }}",  # not dbt's: ignored
    })
    assert check_project.check(clean_manifest(), tmp_path) == [
        "var_declared: window_days: read in macros/window.sql but not declared in dbt_project.yml vars",
        "var_declared: stale_setting: declared in dbt_project.yml but never read",
    ]


def test_a_description_written_in_two_files(tmp_path: Path) -> None:
    text = "SHA-256 (lowercase hex) of the trimmed, lowercased email address."
    write(tmp_path, {
        "dbt_project.yml": PROJECT_OK, "models/staging/raw/_raw__sources.yml": SOURCES_OK,
        "models/marts/orders_daily.yml": f"models:\n  - name: orders_daily\n    columns:\n"
                                         f"      - name: email_sha256\n        description: {text}\n",
        "models/marts/orders_outbox.yml": f"models:\n  - name: orders_outbox\n    columns:\n"
                                          f"      - name: email_sha256\n        description: >\n"
                                          f"          {text}\n",
        "models/intermediate/int_orders_enriched.yml": "models:\n  - name: int_orders_enriched\n    columns:\n"
                                                      "      - name: email_sha256\n"
                                                      "        description: \"{{ doc('email_sha256') }}\"\n",
    })
    assert check_project.check(clean_manifest(), tmp_path) == [
        "shared_description: email_sha256: described alike in 2 files (models/marts/orders_daily.yml, "
        "models/marts/orders_outbox.yml): use a docs block"]


def test_main_prints_one_line_per_violation_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = clean_manifest()
    write(tmp_path, {"dbt_project.yml": PROJECT_OK, "models/staging/raw/_raw__sources.yml": SOURCES_OK})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert check_project.main(["--project-dir", str(tmp_path), "--manifest", str(tmp_path / "manifest.json")]) == 0
    assert capsys.readouterr().out == ""
    broken = copy.deepcopy(manifest)
    broken["nodes"][f"model.{P}.orders_daily"]["description"] = ""
    broken["nodes"][f"model.{P}.orders_daily"]["group"] = None
    (tmp_path / "manifest.json").write_text(json.dumps(broken))
    assert check_project.main(["--project-dir", str(tmp_path), "--manifest", str(tmp_path / "manifest.json")]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"model_description: model.{P}.orders_daily: no description",
        f"model_group: model.{P}.orders_daily: belongs to no group",
    ]
    assert check_project.main(["--project-dir", str(tmp_path), "--manifest", str(tmp_path / "missing.json")]) == 2


def test_the_project_keeps_its_rules(tmp_path: Path) -> None:
    """`dbt parse` of this project, then every rule: no violation."""
    run_dbt(["parse", "--target-path", str(tmp_path / "target")], tmp_path / "parse.duckdb")
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert check_project.check(manifest, PROJECT_ROOT) == []
