"""This project installed as a package in another one, parsed: the installing project's defaults
are safe (no demo data, no audit, no monitors), its own generate_schema_name names the package's
schemas, and the vars it sets reach the package. (integration_tests/ builds it for real.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbt_harness import PROJECT_ROOT, run_dbt

NAMING = """
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%} {{ target.schema }}_main
    {%- else -%} team_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
"""


def installing_project(root: Path, variables: dict, naming: bool) -> Path:
    root.mkdir()
    (root / "packages.yml").write_text(f"packages:\n  - local: {PROJECT_ROOT}\n")
    (root / "dbt_project.yml").write_text(
        "name: shop_analytics\nversion: '1.0.0'\nconfig-version: 2\nprofile: tiktok_outbox\n"
        "macro-paths: [macros]\nmodels:\n  tiktok_outbox:\n    marts:\n      +schema: marketing\n"
        f"vars: {json.dumps(variables)}\n")
    if naming:
        (root / "macros").mkdir()
        (root / "macros" / "generate_schema_name.sql").write_text(NAMING)
    return root


def parse(tmp_path: Path, variables: dict, naming: bool = True) -> dict:
    project = installing_project(tmp_path / "shop", variables, naming)
    duckdb_path = tmp_path / "w.duckdb"
    run_dbt(["deps"], duckdb_path, project=project)
    run_dbt(["parse", "--target-path", str(project / "target")], duckdb_path, project=project)
    return json.loads((project / "target" / "manifest.json").read_text())


def package_nodes(manifest: dict, resource_type: str) -> dict[str, dict]:
    return {n["name"]: n for n in manifest["nodes"].values()
            if n["package_name"] == "tiktok_outbox" and n["resource_type"] == resource_type}


@pytest.fixture(scope="module")
def default_install(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return parse(tmp_path_factory.mktemp("default"), {"tiktok_source_schema": "shop_raw",
                                                      "tiktok_orders_identifier": "shop_orders"})


def test_no_demo_data_audit_or_monitor_by_default(default_install: dict) -> None:
    seeds = package_nodes(default_install, "seed")
    assert "customers" not in seeds and "orders" not in seeds
    assert "tiktok_event_mapping" in seeds  # the reference seeds are the package's own data
    tagged = [n["name"] for n in default_install["nodes"].values()
              if {"audit", "monitor"} & set(n["config"].get("tags", []))]
    assert tagged == []
    assert "tiktok_events_outbox" in package_nodes(default_install, "model")


def test_the_installing_projects_naming_and_vars(default_install: dict) -> None:
    models = package_nodes(default_install, "model")
    assert models["tiktok_events_outbox"]["schema"] == "team_marketing"
    assert models["stg_first_party__orders"]["schema"] == "tiktok_main"
    assert models["tiktok_events_outbox"]["access"] == "public"
    assert models["stg_first_party__orders"]["access"] == "private"
    orders = default_install["sources"]["source.tiktok_outbox.first_party.orders"]
    assert (orders["schema"], orders["identifier"]) == ("shop_raw", "shop_orders")


def test_demo_data_and_audit_when_asked_under_dbts_default_naming(tmp_path: Path) -> None:
    manifest = parse(tmp_path, {"tiktok_load_demo_data": True, "tiktok_enable_audit": True}, naming=False)
    seeds = package_nodes(manifest, "seed")
    assert seeds["customers"]["schema"] == "tiktok_raw_first_party"  # dbt's default: <target>_<custom>
    assert "tiktok_delivery_health" in package_nodes(manifest, "model")
    assert "monitor_delivery_latency" in package_nodes(manifest, "test")
    assert package_nodes(manifest, "model")["tiktok_events_outbox"]["schema"] == "tiktok_marketing"
