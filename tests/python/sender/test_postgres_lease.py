"""The PostgreSQL delivery lease outlives a server that ends idle sessions, and a run can tell when
it has lost it: the session connection turns `idle_session_timeout` off for itself, and
`check_lease` confirms in pg_locks that this backend still holds the run's advisory locks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from pg_harness import PgOutbox, make_pg_outbox, pg_target
from sender_harness import PROFILES_YML, make_outbox

from tiktok_sender.errors import EXIT_CONFIG, LeaseLostError, WarehouseError
from tiktok_sender.profiles import load_target
from tiktok_sender.shard import Shard
from tiktok_sender.warehouse import open_warehouse
from tiktok_sender.warehouse.postgres_lease import SLOT_SHARD_BASE

pytest_plugins = ["pg_fixtures"]


@pytest.fixture
def outbox(postgres_cluster) -> Iterator[PgOutbox]:
    created = make_pg_outbox(postgres_cluster, 10)
    yield created
    created.drop()


def test_the_session_outlives_idle_session_timeout_and_keeps_the_lease(
    postgres_cluster, outbox: PgOutbox, tmp_path: Path
) -> None:
    postgres_cluster.query(f'alter database "{outbox.dbname}" set idle_session_timeout = \'1s\'', dbname="postgres")
    plain = postgres_cluster.connect(outbox.dbname)  # a session without the sender's settings
    warehouse = open_warehouse(pg_target(tmp_path, postgres_cluster, outbox.dbname))
    try:
        time.sleep(3)
        with pytest.raises(psycopg2.Error), plain.cursor() as cur:  # the server ended the plain one
            cur.execute("select 1")
        warehouse.check_lease()
        assert warehouse.query("show idle_session_timeout")[1] == [("0",)]
        assert warehouse.count_pending(warehouse.plan_pending(("delivered",), None)) == 10
        with pytest.raises(WarehouseError, match="is in use by another process"):
            open_warehouse(pg_target(tmp_path, postgres_cluster, outbox.dbname))
    finally:
        warehouse.close()
        plain.close()


def test_a_terminated_session_is_a_lost_lease(postgres_cluster, outbox: PgOutbox, tmp_path: Path) -> None:
    target = pg_target(tmp_path, postgres_cluster, outbox.dbname)
    warehouse = open_warehouse(target)
    try:
        warehouse.check_lease()
        (backend,) = warehouse.query("select pg_backend_pid()")[1][0]
        postgres_cluster.query("select pg_terminate_backend(%s)", [backend], dbname="postgres")
        with pytest.raises(LeaseLostError) as caught:
            warehouse.check_lease()
        text = str(caught.value)
        assert text.startswith("the delivery lease of schema tiktok in database ") and "\n" not in text
        assert "was lost: the session holding it ended (" in text and "another run may send the same events" in text
        assert caught.value.exit_code == EXIT_CONFIG
        open_warehouse(target).close()  # which is what makes it matter: another run can start
    finally:
        warehouse.close()  # and closing a dead session does not raise


def test_a_shard_lease_is_checked_lock_by_lock(postgres_cluster, outbox: PgOutbox, tmp_path: Path) -> None:
    warehouse = open_warehouse(pg_target(tmp_path, postgres_cluster, outbox.dbname), shard=Shard(2, 3))
    try:
        warehouse.check_lease()
        key = warehouse._lease.key  # to let go of one of its two locks, as a lost one would be
        warehouse.query("select pg_advisory_unlock(cast(%s as integer), cast(%s as integer))",
                        [key, 3 * SLOT_SHARD_BASE + 2])
        with pytest.raises(LeaseLostError, match=r"for shard 2/3 .* no longer holds its advisory lock\(s\) 30002"):
            warehouse.check_lease()
    finally:
        warehouse.close()


def test_read_only_and_duckdb_warehouses_have_nothing_to_check(
    postgres_cluster, outbox: PgOutbox, tmp_path: Path
) -> None:
    reading = open_warehouse(pg_target(tmp_path, postgres_cluster, outbox.dbname), read_only=True)
    try:
        reading.check_lease()
    finally:
        reading.close()
    duck = make_outbox(tmp_path / "warehouse.duckdb", 1)
    (tmp_path / "duck").mkdir()
    (tmp_path / "duck" / "profiles.yml").write_text(PROFILES_YML)
    target = load_target(profiles_dir_flag=tmp_path / "duck", environ={"DBT_DUCKDB_PATH": str(duck.path)}, cwd=tmp_path)
    warehouse = open_warehouse(target)
    try:
        warehouse.check_lease()
    finally:
        warehouse.close()
