"""What the delivery tables say about the past, in SQL every engine runs: the event-level state
of the outbox (`sender status`), the runs a killed process left `running`, and the outbox rows
with a null key that already have their receipt."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tiktok_sender.shard import Shard
from tiktok_sender.tables.outbox import FINGERPRINT_COLUMN, KEY_COLUMNS
from tiktok_sender.tables.receipts import CRASHED_MESSAGE, RUN_CRASHED, RUN_RUNNING

if TYPE_CHECKING:
    from tiktok_sender.warehouse.base import SqlWarehouse

log = logging.getLogger("tiktok_sender")


@dataclass(frozen=True)
class StatusReport:
    """Event-level delivery state of the outbox (production receipts only)."""

    outbox: int
    delivered: int
    rejected: int
    expired: int
    failed: int
    never_sent: int
    test_events: int
    last_run: Mapping[str, Any] | None
    top_errors: Sequence[Mapping[str, Any]]
    null_key: int = 0
    """Outbox rows with a null event_source_id, event or event_id: never pending (no receipt can
    settle them), so not in `never_sent`; each gets one `rejected` receipt, recognised by its
    `row_fingerprint`."""

    @property
    def pending(self) -> int:
        return self.failed + self.never_sent


def delivery_status(warehouse: SqlWarehouse) -> StatusReport:
    """The state of every outbox event at its best production receipt, the last run and the most
    frequent errors (driver errors pass through: the caller wraps them)."""
    warehouse.check_outbox()
    outbox, receipts, runs = warehouse.outbox, warehouse.receipts, warehouse.runs
    null_key = " or ".join(f"o.{c} is null" for c in KEY_COLUMNS)
    has_receipts = warehouse.column_types(warehouse.relations.receipts) is not None
    has_runs = warehouse.column_types(warehouse.relations.runs) is not None
    if has_receipts:
        _, rows = warehouse.query(
            f"""
            with r as (
                select event_source_id, event, event_id,
                       max(case when status = 'delivered' then 1 else 0 end) as d,
                       max(case when status = 'rejected' then 1 else 0 end) as rj,
                       max(case when status = 'expired' then 1 else 0 end) as ex,
                       max(case when status = 'failed' then 1 else 0 end) as f
                from {receipts}
                where test_event_code is null
                group by event_source_id, event, event_id
            )
            select count(*),
                   count(case when r.d = 1 then 1 end),
                   count(case when coalesce(r.d, 0) = 0 and r.rj = 1 then 1 end),
                   count(case when coalesce(r.d + r.rj, 0) = 0 and r.ex = 1 then 1 end),
                   count(case when coalesce(r.d + r.rj + r.ex, 0) = 0 and r.f = 1 then 1 end),
                   count(case when r.event_id is null and not ({null_key}) then 1 end),
                   count(case when {null_key} then 1 end)
            from {outbox} o
            left join r using (event_source_id, event, event_id)
            """
        )
        counts = rows[0]
        _, test_rows = warehouse.query(
            f"select count(*) from (select distinct event_source_id, event, event_id from {receipts}"
            " where test_event_code is not null) t"
        )
        test_events = int(test_rows[0][0])
        _, errors = warehouse.query(
            f"""
            select api_code, status, count(*) as receipts, min(api_message) as example
            from {receipts}
            where status in ('rejected', 'failed') and test_event_code is null
            group by api_code, status
            order by receipts desc, api_code nulls last
            limit 5
            """
        )
    else:
        _, rows = warehouse.query(
            f"select count(*), count(case when {null_key} then 1 end) from {outbox} o")
        total, keyless = int(rows[0][0]), int(rows[0][1])
        counts, test_events, errors = (total, 0, 0, 0, 0, total - keyless, keyless), 0, []
    last_run = None
    if has_runs:
        names, found = warehouse.query(f"select * from {runs} order by started_at desc limit 1")
        last_run = dict(zip(names, found[0], strict=True)) if found else None
    return StatusReport(
        outbox=int(counts[0]),
        delivered=int(counts[1]),
        rejected=int(counts[2]),
        expired=int(counts[3]),
        failed=int(counts[4]),
        never_sent=int(counts[5]),
        null_key=int(counts[6]),
        test_events=test_events,
        last_run=last_run,
        top_errors=[
            {"api_code": e[0], "status": e[1], "receipts": int(e[2]), "example": e[3]}
            for e in errors
        ],
    )


def mark_crashed_runs(warehouse: SqlWarehouse, run_id: str, shard: Shard | None) -> int:
    """`SqlWarehouse.mark_crashed_runs` (see there): mark `crashed` the `running` rows of runs
    that cannot be alive beside run `run_id` of `shard`; how many. Driver errors pass through."""
    if warehouse.column_types(warehouse.relations.runs) is None:
        return 0
    mark = warehouse.dialect.param
    where = f"outcome = {mark} and run_id <> {mark}"
    params: list[Any] = [RUN_CRASHED, CRASHED_MESSAGE.format(run_id=run_id), RUN_RUNNING, run_id]
    if warehouse.concurrent_shards and shard is not None:
        # not the rows of the other shards K'/N of this set: those runs may be alive
        where += f" and (shard is null or shard = {mark} or split_part(shard, '/', 2) <> {mark})"
        params.extend([str(shard), str(shard.count)])
    _, rows = warehouse.query(
        f"update {warehouse.runs} set outcome = {mark}, message = {mark} where {where}"
        " returning run_id",
        params,
    )
    if rows:
        log.warning("%d earlier run(s) left `running` marked crashed: %s", len(rows),
                    ", ".join(sorted(str(r[0]) for r in rows)))
    return len(rows)


def receipted_fingerprints(warehouse: SqlWarehouse) -> set[str]:
    """The `row_fingerprint`s of the receipts: the outbox rows with a null key already reported
    (none while the receipts table, or that column, does not exist). Driver errors pass through."""
    types = warehouse.column_types(warehouse.relations.receipts)
    if types is None or FINGERPRINT_COLUMN not in types:
        return set()
    _, rows = warehouse.query(
        f"select distinct {FINGERPRINT_COLUMN} from {warehouse.receipts}"
        f" where {FINGERPRINT_COLUMN} is not null"
    )
    return {r[0] for r in rows}
