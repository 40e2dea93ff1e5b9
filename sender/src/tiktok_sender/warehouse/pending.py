"""Which outbox rows a run reads: what is new since the last complete run, plus what is still open.

The outbox is append-only and every build stamps its rows with a rising `outbox_seq` (dbt's
`outbox_seq` macro). A run that handed out every pending row and receipted each one records in
its run row the `outbox_seq` it read through (`outbox_seq_through`, the outbox's highest at its
start). The next run reads:

- the **new** rows: `outbox_seq` above that mark, up to the outbox's highest now;
- the **open** rows at or below the mark: those whose receipt is not terminal (`failed`). Every
  row pending at the marking run got a receipt of that run, so an open row has a non-terminal
  receipt, and its `event_time` is no older than that run's start minus its `--max-age-days`
  (older events got a terminal `expired` receipt instead of being sent);

and keeps those without a terminal production receipt. A receipt carries its row's
`event_time`, so the terminal receipts that can match these rows are those no older than the
oldest of them: the receipts read are bounded by event age, not by the history. The result is
the same set of rows the whole-history query gives (tests/python/sender/test_pending_window.py
replays timelines to prove it), at a cost that grows with the new work.

The whole history is read (every outbox row against every terminal receipt) when there is no
mark yet (the first run, or runs of an older sender), with `--retry-rejected` (a repair that
looks again at every rejected event), with `--rescan`, and when the outbox's highest
`outbox_seq` is below the mark (an outbox restored from an older copy). An outbox without the
column (built by an older version of the dbt project) is always read whole.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from tiktok_sender.shard import Shard
from tiktok_sender.tables.receipts import REJECTED

if TYPE_CHECKING:
    from tiktok_sender.warehouse.base import SqlWarehouse

log = logging.getLogger(__name__)

SEQ_COLUMN = "outbox_seq"
THROUGH_COLUMN = "outbox_seq_through"
# Added to the age bound of the open rows: the marking run computed its expiry a little after
# the start it recorded, so this only widens the bound.
OPEN_SLACK_S = 3600


@dataclass(frozen=True)
class PendingWindow:
    """The outbox rows a run reads, by `outbox_seq` (module docstring).

    `through_seq`: the outbox's highest outbox_seq at the run's start; rows above it are left to
    the next run. `after_seq`: the mark of the last complete run; None reads every row up to
    `through_seq` against every receipt (the whole history). `open_since`: the event_time bound of
    the open rows; `receipts_since`: the event_time bound of the terminal receipts read (None:
    all). `mark_run`: the run whose mark this is."""

    through_seq: int
    after_seq: int | None = None
    open_since: int | None = None
    receipts_since: int | None = None
    mark_run: str | None = None

    @property
    def whole_history(self) -> bool:
        return self.after_seq is None


@dataclass(frozen=True)
class PendingQuery:
    """What a run reads: rows without a receipt of one of the `terminal` statuses, of `shard`,
    at most `limit` (oldest first), within `window` (None: an outbox without outbox_seq)."""

    terminal: tuple[str, ...]
    limit: int | None = None
    shard: Shard | None = None
    window: PendingWindow | None = None


def plan_window(
    warehouse: SqlWarehouse, terminal: Sequence[str], shard: Shard | None, *, rescan: bool = False
) -> PendingWindow | None:
    """The window of this run's pending rows (module docstring); None when the outbox has no
    outbox_seq column."""
    if not warehouse.outbox_has_seq():
        log.info("the outbox has no %s column (a dbt project older than the sender): every run "
                 "reads the whole delivery history", SEQ_COLUMN)
        return None
    _, rows = warehouse.query(f"select max({SEQ_COLUMN}) from {warehouse.outbox}")
    through = int(rows[0][0]) if rows and rows[0][0] is not None else 0
    whole = PendingWindow(through_seq=through)
    if rescan or REJECTED not in terminal:
        return whole
    runs = warehouse.column_types(warehouse.relations.runs) or {}
    if warehouse.dialect.stored(THROUGH_COLUMN) not in runs:  # no run of this sender yet
        return whole
    mark = _last_mark(warehouse, shard)
    if mark is None:
        return whole
    run_id, started_at, settings, after = mark
    if through < after:
        log.warning("the outbox's highest %s (%d) is below the mark of run %s (%d): the outbox was "
                    "replaced by an older copy? Reading the whole history", SEQ_COLUMN, through,
                    run_id, after)
        return whole
    max_age_days = _max_age_days(settings)
    if max_age_days is None:
        log.warning("the settings of run %s do not say its --max-age-days: reading the whole "
                    "history", run_id)
        return whole
    open_since = int(_epoch(started_at) - max_age_days * 86400) - OPEN_SLACK_S
    mark_param = warehouse.dialect.param
    _, rows = warehouse.query(
        f"select min(event_time) from {warehouse.outbox} where {SEQ_COLUMN} > {mark_param}"
        f" and {SEQ_COLUMN} <= {mark_param}", [after, through])
    oldest_new = rows[0][0] if rows else None
    receipts_since = open_since if oldest_new is None else min(open_since, int(oldest_new))
    return PendingWindow(through_seq=through, after_seq=after, open_since=open_since,
                         receipts_since=receipts_since, mark_run=run_id)


def _last_mark(warehouse: SqlWarehouse, shard: Shard | None) -> tuple[str, Any, Any, int] | None:
    """(run_id, started_at, settings, outbox_seq_through) of the production run with the highest
    mark whose rows cover this run's: an unsharded run's cover every shard, a shard run's only
    its own shard."""
    mark = warehouse.dialect.param
    params: list[Any] = []
    where = f"{THROUGH_COLUMN} is not null and test_event_code is null"
    if shard is None:
        where += " and shard is null"
    else:
        where += f" and (shard is null or shard = {mark})"
        params.append(str(shard))
    _, rows = warehouse.query(
        f"select run_id, started_at, settings, {THROUGH_COLUMN} from {warehouse.runs}"
        f" where {where} order by {THROUGH_COLUMN} desc, started_at desc limit 1", params)
    if not rows:
        return None
    run_id, started_at, settings, through = rows[0]
    return str(run_id), started_at, settings, int(through)


def _epoch(value: Any) -> float:
    """A run's started_at (a naive UTC timestamp, as a datetime or ISO text) in Unix seconds."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _max_age_days(settings: Any) -> float | None:
    """--max-age-days of a run, from its settings JSON; None when it does not say."""
    try:
        value = float(orjson.loads(settings or "{}")["max_age_days"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return value if value > 0 and value != float("inf") else None
