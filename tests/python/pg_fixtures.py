"""pytest fixtures for tests that need a real PostgreSQL server (scripts/pg_cluster.py).

Use them from a test module with ``pytest_plugins = ["pg_fixtures"]`` (or import them in a
conftest). ``postgres_cluster`` is session-scoped: every test of a run shares one throwaway
cluster on 127.0.0.1, stopped and removed at the end of the session. It is a
``pg_cluster.Cluster``: ``.env`` (the TIKTOK_PG_* variables of the postgres target), ``.dsn()``,
``.connect()`` and ``.query()`` (psycopg2). Tests that change data should work in a database of
their own (``.create_database(name)``, or ``.clone_database(source, name)`` to copy a built one);
``.create_password_role(name, password)`` adds a role that must log in with its password.
``new_postgres_cluster`` starts further clusters (a context manager) for tests that need one.

Where no PostgreSQL server binaries exist the fixture skips with a plain message, except under
``CI=true``, where that is a failure: CI must run these tests. A cluster started beforehand with
``eval "$(python scripts/pg_cluster.py start)"`` is used as is when ``TIKTOK_PG_CLUSTER_DIR`` names
it (and is left running).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from scripts_loader import load_script

pg_cluster = load_script("pg_cluster")


def require_postgres_binaries() -> Path:
    """The server binaries' directory; skips (fails under CI=true) when there is none."""
    bindir = pg_cluster.find_bindir()
    if bindir is None:
        message = ("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: the PostgreSQL tests "
                   "need them (apt-get install postgresql, or set PG_BINDIR)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true, so this is a failure, not a skip", pytrace=False)
        pytest.skip(message)
    return bindir


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[pg_cluster.Cluster]:
    """A running cluster: .host .port .user .password .dbname, .env (TIKTOK_PG_*), .dsn()."""
    external = os.environ.get("TIKTOK_PG_CLUSTER_DIR")
    if external:
        yield pg_cluster.Cluster.load(external)
        return
    bindir = require_postgres_binaries()
    with pg_cluster.cluster(bindir=bindir) as running:
        yield running


@pytest.fixture
def new_postgres_cluster():
    """pg_cluster.cluster with the binaries found: `with new_postgres_cluster() as pg: ...`."""
    bindir = require_postgres_binaries()
    return lambda: pg_cluster.cluster(bindir=bindir)
