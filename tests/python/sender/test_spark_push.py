"""`sender push` on Spark end to end (lockless_push's tests): the repository's `spark` profile
target (Spark Connect) on the session's local Spark (spark_fixtures), the emulator on 127.0.0.1.
Spark has no lock to take: the lease is claim rows (warehouse/claims.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lockless_push import LocklessPush
from sender_harness import Project
from spark_harness import SparkOutbox, make_spark_outbox, spark_project

pytest_plugins = ["spark_fixtures"]


class SparkEngine:
    """lockless_push.Engine on the session's Spark server: one `tiktok` schema at a time."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def empty(self) -> SparkOutbox:
        outbox = SparkOutbox(self.server)
        outbox.drop()
        return outbox

    def outbox(self, workdir: Path, n: int) -> SparkOutbox:
        return make_spark_outbox(self.server, workdir, n)

    def discard(self, outbox: SparkOutbox) -> None:
        outbox.drop()

    def project(self, root: Path, outbox: SparkOutbox, api_url: str) -> Project:
        return spark_project(root, outbox, api_url)

    def receipt_columns(self, outbox: SparkOutbox) -> list[str]:
        return [r[0] for r in outbox.execute("describe tiktok.tiktok_delivery_receipts")]


@pytest.fixture
def engine(spark_server: Any) -> SparkEngine:
    return SparkEngine(spark_server)


class TestSparkPush(LocklessPush):
    pass
