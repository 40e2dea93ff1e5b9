"""int_customer_identities built incrementally from small hand-written customer tables.

An incremental build must normalise and hash again exactly the customers whose latest source row
differs from the one held (by its fingerprint), or who are not held yet, whatever the rows'
timestamps say: a row that arrives late with an older updated_at, rows after an empty first build,
rows without updated_at or created_at. Customers that left the source leave the model. After any
sequence of incremental builds the table equals a `--full-refresh` build.

Each test builds a copy of the project (no demo data: `tiktok_load_demo_data: false`) into a
DuckDB file of its own, with the source table `raw_first_party.customers` written by the test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from dbt_harness import InProcessDbt, copy_project

SOURCE = "raw_first_party.customers"
MODEL = "tiktok.int_customer_identities"
VARS = json.dumps({"tiktok_load_demo_data": False})
COLUMNS = ("customer_id", "email", "phone", "country_code", "created_at", "updated_at")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Warehouse:
    def __init__(self, project: Path, path: Path) -> None:
        self.project = project
        self.path = path
        # in this process, parsed once per warehouse (DuckDB names its catalog after the file)
        self.dbt = InProcessDbt(project, path, VARS)

    def build(self, full_refresh: bool = False) -> None:
        self.dbt("run", "--select", "stg_first_party__customers", "+int_customer_privacy", "int_customer_identities",
                 *(["--full-refresh"] if full_refresh else []))

    def sql(self, statement: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.path)) as con:
            return con.execute(statement, params or []).fetchall()

    def insert(self, *rows: tuple) -> None:
        for row in rows:
            self.sql(f"insert into {SOURCE} values (?, ?, ?, ?, ?, ?)", list(row))

    def email_hashes(self) -> dict[str, str | None]:
        return dict(self.sql(f"select customer_id, email_sha256 from {MODEL}"))

    def table(self) -> set[tuple]:
        """Every row, its columns in name order (a column an upgrade adds comes last in the table)."""
        columns = sorted(c for (c,) in self.sql(
            "select column_name from information_schema.columns where table_name = 'int_customer_identities'"))
        return set(self.sql(f"select {', '.join(columns)} from {MODEL}"))


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The project's copy, and a DuckDB file with the calling codes and an empty source table."""
    work = tmp_path_factory.mktemp("identities")
    warehouse = Warehouse(copy_project(work / "project"), work / "empty.duckdb")
    warehouse.sql("create schema raw_first_party")
    warehouse.sql(f"create table {SOURCE} (customer_id varchar, email varchar, phone varchar, "
                  "country_code varchar, created_at timestamp, updated_at timestamp)")
    warehouse.dbt("seed", "--select", "country_calling_codes")
    return warehouse


@pytest.fixture
def warehouse(empty_warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(empty_warehouse.path, path)
    return Warehouse(empty_warehouse.project, path)


def assert_equals_full_refresh(warehouse: Warehouse) -> None:
    incremental = warehouse.table()
    warehouse.build(full_refresh=True)
    assert warehouse.table() == incremental


def test_empty_first_build_then_rows(warehouse):
    warehouse.build()
    assert warehouse.email_hashes() == {}
    warehouse.insert(("C1", "a@example.com", None, "US", "2026-01-01", "2026-01-01"),
                     ("C2", "b@example.com", None, "US", "2026-01-01", None))
    warehouse.build()
    assert warehouse.email_hashes() == {"C1": sha("a@example.com"), "C2": sha("b@example.com")}
    assert_equals_full_refresh(warehouse)


def test_late_row_with_an_older_updated_at(warehouse):
    warehouse.insert(("C1", "old@example.com", None, "US", "2026-01-01", "2026-01-01"),
                     ("C2", "b@example.com", None, "US", "2026-01-01", "2026-03-01"))
    warehouse.build()
    # loaded late: a newer row for C1 that is still older than C2's (the old watermark), and a
    # customer whose only row is older than every row held
    warehouse.insert(("C1", "New@Example.com", None, "US", "2026-01-01", "2026-02-01"),
                     ("C3", "c@example.com", None, "US", "2025-06-01", "2025-06-01"))
    warehouse.build()
    assert warehouse.email_hashes() == {
        "C1": sha("new@example.com"), "C2": sha("b@example.com"), "C3": sha("c@example.com")}
    assert_equals_full_refresh(warehouse)


def test_rows_without_timestamps(warehouse):
    warehouse.insert(("C1", "a@example.com", None, "US", None, None),
                     ("C2", "b@example.com", None, "US", "2026-01-01", "2026-01-01"))
    warehouse.build()
    assert warehouse.email_hashes() == {"C1": sha("a@example.com"), "C2": sha("b@example.com")}
    # corrected in place, timestamps still null
    warehouse.sql(f"update {SOURCE} set email = 'fixed@example.com' where customer_id = 'C1'")
    warehouse.build()
    assert warehouse.email_hashes()["C1"] == sha("fixed@example.com")
    # a dated row wins over an undated one of the same customer, whatever order they arrive in
    warehouse.insert(("C2", "undated@example.com", None, "US", None, None))
    warehouse.build()
    assert warehouse.email_hashes()["C2"] == sha("b@example.com")
    assert_equals_full_refresh(warehouse)


def test_only_changed_customers_are_hashed_again(warehouse):
    warehouse.insert(("C1", "a@example.com", "(415) 555-0132", "US", "2026-01-01", "2026-01-01"),
                     ("C2", "b@example.com", None, "US", "2026-01-01", "2026-01-01"),
                     ("C3", "c@example.com", None, "US", "2026-01-01", "2026-01-01"))
    warehouse.build()
    # mark every held row: a row hashed again loses the mark
    warehouse.sql(f"update {MODEL} set email_sha256 = 'held'")
    warehouse.sql(f"update {SOURCE} set phone = '(415) 555-0199' where customer_id = 'C1'")  # same updated_at
    warehouse.sql(f"delete from {SOURCE} where customer_id = 'C3'")
    warehouse.insert(("C4", "d@example.com", None, "US", "2020-01-01", "2020-01-01"))
    warehouse.build()
    assert warehouse.email_hashes() == {"C1": sha("a@example.com"), "C2": "held", "C4": sha("d@example.com")}
    ((phone,),) = warehouse.sql(f"select phone_sha256 from {MODEL} where customer_id = 'C1'")
    assert phone == sha("+14155550199")


def test_duplicated_rows_pick_the_same_row_every_time(warehouse):
    # two rows with the same key and timestamps: the fingerprint decides, so a full refresh and an
    # incremental build (and any engine) keep the same one
    warehouse.insert(("C1", "x@example.com", None, "US", "2026-01-01", "2026-01-01"),
                     ("C1", "y@example.com", None, "US", "2026-01-01", "2026-01-01"))
    warehouse.build()
    first = warehouse.email_hashes()["C1"]
    assert first in (sha("x@example.com"), sha("y@example.com"))
    warehouse.build()
    assert warehouse.email_hashes()["C1"] == first
    assert_equals_full_refresh(warehouse)


def test_a_table_built_before_fingerprints_is_rebuilt(warehouse):
    warehouse.insert(("C1", "a@example.com", None, "US", "2026-01-01", "2026-01-01"))
    warehouse.build()
    # the table as an earlier version of the model left it: no fingerprint column
    warehouse.sql(f"alter table {MODEL} drop column source_fingerprint")
    warehouse.sql(f"update {MODEL} set email_sha256 = 'stale'")
    warehouse.build()
    assert warehouse.email_hashes() == {"C1": sha("a@example.com")}
    assert warehouse.sql(f"select count(*) from {MODEL} where source_fingerprint is null") == [(0,)]
    assert_equals_full_refresh(warehouse)
