"""The delivery lease where the warehouse has no lock to take (Spark, Snowflake): claim rows.

The rows live in `tiktok_delivery_leases`, next to the runs table; every time in them is the
server's clock, so the clocks of the machines that run the sender do not matter. A run appends a
claim (holder, claimed_at, written_at, expires_at = now + LEASE_TTL_SECONDS), waits
LEASE_SETTLE_SECONDS for a rival's claim to become visible, then reads the live claims (a
holder's latest row not yet expired): the earliest claim (claimed_at, then holder) holds the
lease, any other claimant withdraws (a row that expires its claim at once) and waits, as for a
held lock. The holder renews (a new row) on the lease check every LEASE_RENEW_SECONDS, and stops
with LeaseLostError when an earlier live claim appears or its own has expired; `release()`
expires it and has the warehouse sweep the table (`sweep_claims`). A holder that dies stops
renewing: its claim expires after LEASE_TTL_SECONDS and the next run takes over.

Two runs that start within the settle time both see both claims and agree on the winner. The
rule assumes that a claim is visible to every reader within LEASE_SETTLE_SECONDS of its
`claimed_at` (the time its statement started). A write held up for longer (a warehouse queue)
can let two runs hold the lease for a moment: the later check of the one whose claim is not the
earliest stops it (LeaseLostError), and the events both selected in that moment carry the same
event_id, which the Events API deduplicates. A scheduler that never starts two runs of one
target at once (the recommended set-up) never relies on this.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pyarrow as pa

from tiktok_sender.errors import LeaseLostError
from tiktok_sender.relations import Relation
from tiktok_sender.warehouse.base import Dialect
from tiktok_sender.warehouse.support import LeaseHeld, first_line, poll_lease, quote_identifier

log = logging.getLogger("tiktok_sender")

__all__ = ["LEASE_SCHEMA", "LEASE_TABLE", "ClaimLease", "take_lease"]

LEASE_TABLE = "tiktok_delivery_leases"
LEASE_TTL_SECONDS = 60
LEASE_RENEW_SECONDS = 15
LEASE_SETTLE_SECONDS = 2.0
LEASE_SCHEMA = pa.schema([("holder", pa.string()), ("claimed_at", pa.timestamp("us")),
                          ("written_at", pa.timestamp("us")), ("expires_at", pa.timestamp("us"))])


class ClaimWarehouse(Protocol):
    """What a ClaimLease needs of its warehouse (a `base.SqlWarehouse` with `sweep_claims`)."""

    dialect: Dialect
    driver_errors: tuple[type[BaseException], ...]

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def column_types(self, relation: Relation) -> dict[str, str] | None: ...

    def location(self) -> str: ...

    def sweep_claims(self, relation: Relation, holder: str) -> None: ...


class ClaimLease:
    """The delivery lease as claim rows of `relation` (see the module docstring)."""

    def __init__(self, warehouse: ClaimWarehouse, relation: Relation,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._warehouse = warehouse
        self._relation = relation
        self._holder = f"{uuid.uuid4().hex[:12]}"
        self._claimed = False  # a claim row of this holder may be live
        self._held = False  # the claim won: this holder holds the lease
        self._renewed_at = 0.0
        self._clock = clock

    @property
    def holder(self) -> str:
        return self._holder

    def _ensure_table(self) -> None:
        w, r = self._warehouse, self._relation
        if w.column_types(r) is None:
            text, stamp = w.dialect.column_type("varchar"), w.dialect.column_type("timestamp")
            columns = ", ".join(f"{w.dialect.identifier(f.name)} {text if f.name == 'holder' else stamp}"
                                for f in LEASE_SCHEMA)
            w._execute(f"create schema if not exists {quote_identifier(r.schema)}")
            w._execute(f"create table if not exists {r.sql} ({columns}){w.dialect.table_options}")

    def _write(self, ttl_seconds: int) -> None:
        """A row of this holder's claim, expiring `ttl_seconds` from now (0: withdrawn)."""
        first = "current_timestamp()" if not self._claimed else (
            f"(select min(claimed_at) from {self._relation.sql} where holder = ?)")
        params: list[Any] = [self._holder] + ([self._holder] if self._claimed else []) + [ttl_seconds]
        self._warehouse._execute(
            f"insert into {self._relation.sql} select ?, {first}, current_timestamp(),"
            " timestampadd(SECOND, ?, current_timestamp())", params)

    def live_claims(self) -> list[tuple[str, Any]]:
        """(holder, claimed_at) of the claims not expired, earliest first."""
        _, rows = self._warehouse.query(
            f"select holder, claimed_at from (select holder, claimed_at, expires_at, row_number()"
            f" over (partition by holder order by written_at desc) as latest from {self._relation.sql}) c"
            " where latest = 1 and expires_at > current_timestamp() order by claimed_at, holder")
        return [(str(h), c) for h, c in rows]

    def take(self) -> None:
        """Claim the lease; LeaseHeld while another holder's claim is live (poll_lease retries).
        A write that fails is taken for a rival writing at the same moment: LeaseHeld too, and
        the claim is tried again."""
        try:
            self._ensure_table()
            others = [h for h, _ in self.live_claims() if h != self._holder]
            if others:
                raise LeaseHeld(f"lease holder {others[0]}")
            self._write(LEASE_TTL_SECONDS)
            self._claimed = True
            time.sleep(LEASE_SETTLE_SECONDS)
            claims = self.live_claims()
        except self._warehouse.driver_errors as exc:
            self._withdraw()
            raise LeaseHeld(f"a rival claim being written ({first_line(exc)[:80]})") from None
        if not claims or claims[0][0] != self._holder:  # an earlier claim, or ours swept away
            self._withdraw()
            raise LeaseHeld(f"lease holder {claims[0][0] if claims else 'unknown'}")
        self._held = True
        self._renewed_at = self._clock()

    def check(self) -> None:
        """Renew the claim when due; LeaseLostError when it is no longer the earliest live one."""
        if self._clock() - self._renewed_at >= LEASE_RENEW_SECONDS:
            self._write(LEASE_TTL_SECONDS)
            self._renewed_at = self._clock()
        claims = self.live_claims()
        if not claims or claims[0][0] != self._holder:
            holder = claims[0][0] if claims else "none"
            raise LeaseLostError(
                f"the delivery lease of {self._warehouse.location()} is no longer held by this run "
                f"(earliest live claim: {holder}): another run may select the same events")

    def _withdraw(self) -> None:
        """Expire this claimant's claim, if it made one; best effort (unexpired, it lapses after
        LEASE_TTL_SECONDS, and a later claim never outranks an earlier one)."""
        if not self._claimed:
            return
        self._claimed = False
        try:
            self._write(0)
        except self._warehouse.driver_errors as exc:
            log.debug("withdrawing the lease claim failed: %s", first_line(exc))

    def release(self) -> None:
        """Expire the claim; the holder then has the warehouse sweep the table, best effort,
        down to no more than the live claims of others, so the table stays as small as the runs
        in flight. A claim appended while the sweep runs may be swept away: its claimant then
        does not see it and withdraws (`take`)."""
        held, self._held = self._held, False
        self._withdraw()
        if not held:
            return
        try:
            self._warehouse.sweep_claims(self._relation, self._holder)
        except self._warehouse.driver_errors as exc:
            log.debug("sweeping the lease table failed: %s", first_line(exc))


def take_lease(warehouse: ClaimWarehouse, relation: Relation, *, timeout: float,
               abort: threading.Event | None, hint: str) -> ClaimLease:
    """The lease of `warehouse` as claim rows of `relation`, taken (waiting up to `timeout`
    seconds for another holder's claim to end, or until `abort` is set; `hint` says who that
    holder may be)."""
    lease = ClaimLease(warehouse, relation)
    poll_lease(lease.take, timeout=timeout, describe=f"the delivery lease of {warehouse.location()}",
               hint=hint, abort=abort)
    return lease
