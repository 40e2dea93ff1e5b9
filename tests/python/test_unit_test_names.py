"""dbt builds each unit test in a relation named after it, and PostgreSQL refuses names longer
than 63 bytes ("Relation name ... is longer than 63 characters"): every unit test's name must fit,
or the PostgreSQL build fails where DuckDB passed."""

from __future__ import annotations

from pathlib import Path

import yaml

from dbt_harness import PROJECT_ROOT

POSTGRES_MAX_IDENTIFIER = 63


def unit_test_names() -> list[tuple[Path, str]]:
    names = []
    for path in sorted((PROJECT_ROOT / "models").rglob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names += [(path.relative_to(PROJECT_ROOT), test["name"]) for test in spec.get("unit_tests") or []]
    return names


def test_the_project_has_unit_tests() -> None:
    assert len(unit_test_names()) >= 20


def test_every_unit_test_name_fits_a_postgres_identifier() -> None:
    too_long = [(str(path), name, len(name)) for path, name in unit_test_names()
                if len(name.encode()) > POSTGRES_MAX_IDENTIFIER]
    assert too_long == []
