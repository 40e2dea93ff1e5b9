"""The PostgreSQL delivery lease: session advisory locks of two int4 keys, `(key, slot)`.

`key` is derived from the name of the delivery tables' schema, the receipts' (advisory locks are
per database already), so runs that share a receipts table share a lease, wherever their outbox
is. An unsharded run holds slot 0 exclusively; a `--shard K/N` run holds slot 0 shared and slot
`N * 10000 + K` exclusively, and refuses to start while a run of another N holds a shard (their
shares overlap). So the shards of one set run side by side, and any two runs that could select
the same event exclude each other. Lease attempts are serialised by a transaction lock on slot 1,
which makes the check for other shard counts race-free; slot 2 serialises the creation of the
delivery tables. The locks belong to the session: the server releases them when the connection
ends, also when the sender is killed, and also when the server ends the session, which
`AdvisoryLease.check` detects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from tiktok_sender.errors import LeaseLostError, WarehouseError
from tiktok_sender.shard import Shard
from tiktok_sender.warehouse.support import LeaseHeld

LEASE_NAMESPACE = "tiktok_outbox.sender:"
SLOT_LEASE = 0  # exclusive: an unsharded run; shared: every sharded run
SLOT_GATE = 1  # transaction lock: one lease attempt at a time
SLOT_DDL = 2  # transaction lock: one creation of the delivery tables at a time
SLOT_SHARD_BASE = 10_000  # shard K/N holds slot N * 10000 + K
# A parameter as the int4 the two-key advisory-lock functions take (Python ints bind as int8).
_INT4 = "cast(%s as integer)"
_THIS_DATABASE = "l.database = (select oid from pg_database where datname = current_database())"


def lease_key(schema: str) -> int:
    """The first advisory-lock key of the delivery lease of the delivery tables in `schema` (the
    receipts' schema): a non-negative int4."""
    digest = hashlib.sha256((LEASE_NAMESPACE + schema).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def shard_slot(shard: Shard) -> int:
    return shard.count * SLOT_SHARD_BASE + shard.index


class Session(Protocol):
    """The session connection the lease lives on (PostgresWarehouse)."""

    def query(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    driver_errors: tuple[type[BaseException], ...]

    def error_text(self, exc: BaseException) -> str: ...


class AdvisoryLease:
    """One run's delivery lease (of the delivery tables in `schema`, for `shard`) on `session`.
    `describe` names it in messages."""

    def __init__(self, session: Session, schema: str, shard: Shard | None, describe: str) -> None:
        self._session = session
        self.key = lease_key(schema)
        self._shard = shard
        self.describe = describe

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._session.query(sql, params)[1]

    def _try(self, slot: int, *, shared: bool = False) -> bool:
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        rows = self._query(f"select {function}({_INT4}, {_INT4})", [self.key, slot])
        return bool(rows[0][0])

    def _unlock(self, slot: int, *, shared: bool = False) -> None:
        function = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
        self._query(f"select {function}({_INT4}, {_INT4})", [self.key, slot])

    def _holders(self, condition: str, params: Sequence[Any]) -> str:
        """Who holds this lease's advisory locks matching `condition` (on pg_locks `l`)."""
        rows = self._query(
            "select l.pid, coalesce(a.application_name, '') from pg_locks l"
            " left join pg_stat_activity a on a.pid = l.pid"
            " where l.locktype = 'advisory' and l.granted and l.pid <> pg_backend_pid()"
            f" and {_THIS_DATABASE}"
            f" and l.objsubid = 2 and l.classid::bigint = %s and ({condition})"
            " order by l.pid",
            [self.key, *params],
        )
        held = [f"{app}; PostgreSQL backend PID {pid}" if app else f"PostgreSQL backend PID {pid}"
                for pid, app in dict(rows).items()]
        return ", ".join(held) or "a session that just let go"

    def take(self) -> None:
        """One attempt at the lease; raises LeaseHeld naming the holder when it is taken."""
        try:
            with self._session.transaction():
                self._query(f"select pg_advisory_xact_lock({_INT4}, {_INT4})", [self.key, SLOT_GATE])
                if self._shard is None:
                    if not self._try(SLOT_LEASE):
                        raise LeaseHeld(self._holders("l.objid::bigint not in (%s, %s)",
                                                      [SLOT_GATE, SLOT_DDL]))
                    return
                if not self._try(SLOT_LEASE, shared=True):
                    raise LeaseHeld(self._holders(
                        "l.objid::bigint = %s and l.mode = 'ExclusiveLock'", [SLOT_LEASE]))
                slot = shard_slot(self._shard)
                if not self._try(slot):
                    self._unlock(SLOT_LEASE, shared=True)
                    raise LeaseHeld(self._holders("l.objid::bigint = %s", [slot]))
                other_counts = "l.objid::bigint >= %s and l.objid::bigint / %s <> %s"
                params = [SLOT_SHARD_BASE, SLOT_SHARD_BASE, self._shard.count]
                if self._query(
                    "select 1 from pg_locks l where l.locktype = 'advisory' and l.granted"
                    f" and {_THIS_DATABASE}"
                    f" and l.objsubid = 2 and l.classid::bigint = %s and {other_counts} limit 1",
                    [self.key, *params],
                ):
                    self._unlock(slot)
                    self._unlock(SLOT_LEASE, shared=True)
                    raise LeaseHeld(
                        self._holders(other_counts, params) + ", a shard of another shard count"
                    )
        except self._session.driver_errors as exc:
            reason = self._session.error_text(exc)
            raise WarehouseError(f"taking the delivery lease failed: {reason}") from None

    def check(self) -> None:
        """Raise LeaseLostError (one line) unless the session still holds the lease's advisory
        locks: slot 0 exclusively (unsharded), or slot 0 shared and the shard's slot exclusively.
        One cheap query on pg_locks for this backend."""
        expected = ({(SLOT_LEASE, "ExclusiveLock")} if self._shard is None else
                    {(SLOT_LEASE, "ShareLock"), (shard_slot(self._shard), "ExclusiveLock")})
        try:
            rows = self._query(
                "select l.objid::bigint, l.mode from pg_locks l where l.locktype = 'advisory'"
                " and l.granted and l.pid = pg_backend_pid() and l.objsubid = 2"
                f" and {_THIS_DATABASE} and l.classid::bigint = %s",
                [self.key],
            )
        except self._session.driver_errors as exc:
            reason = self._session.error_text(exc)
            raise LeaseLostError(
                f"{self.describe} was lost: the session holding it ended ({reason}); another run "
                "may send the same events, so this run stops"
            ) from None
        missing = expected - {(int(slot), mode) for slot, mode in rows}
        if missing:
            raise LeaseLostError(
                f"{self.describe} was lost: the session no longer holds its advisory lock(s) "
                f"{', '.join(f'{slot} ({mode})' for slot, mode in sorted(missing))}; another run "
                "may send the same events, so this run stops"
            )

