"""`sender push` on emulated Snowflake end to end (lockless_push's tests): the repository's
`snowflake_emulated` profile target (the ADBC Snowflake driver) on the session's fakesnow server
(snowflake_fixtures), the Events API emulator on 127.0.0.1. The pending rows are read as Arrow
and the receipts appended by the driver's bulk ingestion (Parquet files PUT to a stage, one COPY
INTO), as on Snowflake; the lease is claim rows (warehouse/claims.py).

Emulated: fakesnow runs Snowflake's SQL on DuckDB after translating it, so these tests show that
the sender's SQL and the driver's protocol work under that translation, not that Snowflake itself
accepts them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lockless_push import LocklessPush
from sender_harness import Project
from snowflake_harness import SnowflakeOutbox, make_snowflake_outbox, snowflake_project

pytest_plugins = ["snowflake_fixtures"]


class SnowflakeEngine:
    """lockless_push.Engine on the session's fakesnow server: a database per outbox."""

    def __init__(self, port: int) -> None:
        self.port = port

    def empty(self) -> SnowflakeOutbox:
        return SnowflakeOutbox(self.port)

    def outbox(self, workdir: Path, n: int) -> SnowflakeOutbox:
        return make_snowflake_outbox(self.port, workdir, n)

    def discard(self, outbox: SnowflakeOutbox) -> None:
        outbox.close()

    def project(self, root: Path, outbox: SnowflakeOutbox, api_url: str) -> Project:
        return snowflake_project(root, outbox, api_url)

    def receipt_columns(self, outbox: SnowflakeOutbox) -> list[str]:
        """As Snowflake stores them: upper-cased, as dbt-snowflake's unquoted names are."""
        names = [r[0] for r in outbox.execute(
            "select column_name from information_schema.columns where table_schema = 'TIKTOK'"
            " and table_name = 'TIKTOK_DELIVERY_RECEIPTS' order by ordinal_position")]
        assert names == [n.upper() for n in names]
        return [n.lower() for n in names]


@pytest.fixture
def engine(snowflake_emulator: Any) -> SnowflakeEngine:
    return SnowflakeEngine(snowflake_emulator.port)


class TestSnowflakePush(LocklessPush):
    pass
