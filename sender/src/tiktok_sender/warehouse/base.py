"""The SQL every engine shares, written once: the outbox check, the pending query (an anti join
of the outbox against terminal production receipts, the shard filter, the `--limit` order), the
outbox rows with a null key, the runs table and the delivery tables' creation (`SqlWarehouse`),
and the few expressions that differ between engines (`Dialect`). `history` holds the status
query, the marking of crashed runs and the fingerprints already receipted.

An engine module subclasses SqlWarehouse with its connection handling, its way of streaming the
pending rows and of appending receipts in bulk. The tables' names come from dbt (`relations`),
are validated and quoted; no SQL is built from row data (values travel as parameters or as Arrow
data; the few values of the pending query are the sender's own, see `adbc.inline_literals`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final

import pyarrow as pa

from tiktok_sender.errors import WarehouseError
from tiktok_sender.profiles import WarehouseTarget
from tiktok_sender.relations import DeliveryRelations, Relation, moved_receipts, resolve_relations
from tiktok_sender.shard import Shard
from tiktok_sender.tables.outbox import (
    CONTRACT_TYPES,
    KEY_COLUMNS,
    OPTIONAL_COLUMNS,
    OUTBOX_COLUMNS,
    REQUIRED_COLUMNS,
    castable,
    type_problem,
    unreceipted_rows,
)
from tiktok_sender.tables.receipts import RECEIPT_COLUMNS, RUN_COLUMNS, Column
from tiktok_sender.warehouse.history import (
    StatusReport,
    delivery_status,
    mark_crashed_runs,
    receipted_fingerprints,
)
from tiktok_sender.warehouse.pending import SEQ_COLUMN, PendingQuery, plan_window
from tiktok_sender.warehouse.support import first_line, quote_identifier, wrap_errors

if TYPE_CHECKING:
    from tiktok_sender.warehouse import PendingReader

RECEIPT_KEYS: Final = ", ".join(KEY_COLUMNS)  # the key columns, as a select list


class Dialect:
    """The SQL that differs between engines; DuckDB's by default."""

    param: ClassVar[str] = "?"  # the driver's parameter placeholder
    # Whether `--limit` is a SQL LIMIT. DuckDB runs ORDER BY + LIMIT as a top-N that holds N rows
    # in memory and cannot spill: past the memory limit a large --limit fails. Without LIMIT
    # the ORDER BY is an external sort that spills, and the reader stops after N rows.
    limit_in_sql: ClassVar[bool] = False

    def key_filter(self, keys: str, *, keep: bool) -> tuple[str, str]:
        """(join clause, where condition) keeping the outbox rows `o` whose key is (`keep`) or is
        not among the rows of the query `keys` (event_source_id, event, event_id).

        DuckDB: an explicit semi or anti join, not a correlated `exists`, which DuckDB decorrelates
        with a join that materialises the whole outbox side before the first row comes out (memory
        grew with the outbox). The join streams the outbox and holds only the hash table of the
        keys."""
        join = (
            f" {'semi' if keep else 'anti'} join ({keys}) k on k.event_source_id = o.event_source_id"
            " and k.event = o.event and k.event_id = o.event_id"
        )
        return join, ""

    def column_type(self, sql_type: str) -> str:
        """The engine's spelling of a delivery-table column type (`receipts.Column.sql`)."""
        return sql_type

    def replace_all(self, text: str, pattern: str, replacement: str) -> str:
        """SQL replacing every match of the regular expression `pattern` in `text` (all three
        SQL expressions)."""
        return f"regexp_replace({text}, {pattern}, {replacement}, 'g')"

    def stored(self, name: str) -> str:
        """A name dbt or the sender gave (a table, a column of the delivery tables, an audit
        model, a schema), as the engine stores it unquoted."""
        return name

    def identifier(self, name: str) -> str:
        """`name` quoted as the engine stores it (`stored`)."""
        return quote_identifier(self.stored(name))

    # what follows `create table name (columns)` for the delivery tables
    table_options: ClassVar[str] = ""

    def shard_of(self, event_id: str, count: str) -> str:
        """The 0-based shard of `event_id` among `count` (tiktok_sender.shard's hash)."""
        return f"('0x' || substr(sha256(coalesce({event_id}, '')), 1, 8))::bigint % {count}"


class SqlWarehouse:
    """The SQL every engine shares. Subclasses connect, stream pending rows, append receipts."""

    dialect: ClassVar[Dialect] = Dialect()
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    # Whether runs of other shards may be alive beside this one (PostgreSQL's per-shard lease);
    # where the lease is one exclusive lock (DuckDB's file lock), no other run is.
    concurrent_shards: ClassVar[bool] = False
    target: WarehouseTarget
    relations: DeliveryRelations
    outbox: str  # the quoted relations, for SQL
    receipts: str
    runs: str
    _outbox_checked: bool = False
    _outbox_has_seq: bool = False
    _outbox_lacks: frozenset[str] = frozenset()  # the OPTIONAL_COLUMNS the outbox has not

    def _init_names(self, target: WarehouseTarget, *, database: str) -> None:
        """Resolve the outbox, receipts and runs tables (`relations.resolve_relations`), checked
        against `database`, the database the connection is in; their names as the engine stores
        them (`Dialect.stored`)."""
        self.target = target
        relations = resolve_relations(target, database=database)
        fold = self.dialect.stored
        self.relations = DeliveryRelations(
            *(Relation(fold(r.schema), fold(r.name))
              for r in (relations.outbox, relations.receipts, relations.runs)),
            relations.origin)
        self.outbox = self.relations.outbox.sql
        self.receipts = self.relations.receipts.sql
        self.runs = self.relations.runs.sql

    # -- what an engine provides -------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a query (driver errors pass through)."""
        raise NotImplementedError

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement, committed when it returns."""
        raise NotImplementedError

    def error_text(self, exc: BaseException) -> str:
        """A driver error as one line fit for the user (no secret in it)."""
        return first_line(exc)

    def location(self) -> str:
        """Where the warehouse is, for messages."""
        raise NotImplementedError

    def open_pending(self, query: PendingQuery, chunk_rows: int) -> PendingReader:
        """The pending rows (`_pending_sql`), streamed `chunk_rows` at a time as OUTBOX_SCHEMA
        batches, while receipts are appended."""
        raise NotImplementedError

    def append_receipts(self, table: pa.Table) -> None:
        """Append receipts in bulk, durable when this returns."""
        raise NotImplementedError

    def check_lease(self) -> None:
        """Raise LeaseLostError when the delivery lease taken at opening is no longer held.

        DuckDB: nothing to check (the file lock lasts as long as the connection, which the
        process holds); a read-only warehouse holds no lease. PostgreSQL overrides it."""

    def close(self) -> None:
        """Close the connections, letting go of the lease."""
        raise NotImplementedError

    # -- schema -----------------------------------------------------------------------------

    def column_types(self, relation: Relation) -> dict[str, str] | None:
        """Column name -> data_type (information_schema's spelling) of a table, in column order;
        None when there is no such table."""
        _, rows = self.query(
            "select column_name, data_type from information_schema.columns where table_schema = "
            f"{self.dialect.param} and table_name = {self.dialect.param} order by ordinal_position",
            [relation.schema, relation.name],
        )
        return {r[0]: r[1] for r in rows} or None

    def table_names(self, schema: str) -> set[str]:
        """The names of the tables and views in `schema`."""
        _, rows = self.query(
            f"select table_name from information_schema.tables where table_schema = {self.dialect.param}",
            [schema],
        )
        return {r[0] for r in rows}

    @wrap_errors("checking the outbox")
    def check_outbox(self) -> None:
        """Check the outbox has every column of OUTBOX_COLUMNS, each of a type that reads safely as
        its contract type; WarehouseError (one line) when not."""
        relation = self.relations.outbox
        types = self.column_types(relation)
        if types is None:
            raise WarehouseError(
                f"outbox table {relation} not found in {self.location()} (run `dbt build` first)"
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in types]
        if missing:
            raise WarehouseError(f"outbox table {relation} lacks column(s): " + ", ".join(missing))
        problem = type_problem(str(relation), types)
        if problem is not None:
            raise WarehouseError(problem)
        seq_type = types.get(SEQ_COLUMN)
        if seq_type is not None and not castable(seq_type, "bigint"):
            raise WarehouseError(f"outbox table {relation}: column {SEQ_COLUMN} is {seq_type}; "
                                 "it must be an integer (the dbt project's outbox_seq macro)")
        self._outbox_has_seq = seq_type is not None
        self._outbox_lacks = frozenset(c for c in OPTIONAL_COLUMNS if c not in types)
        self._outbox_checked = True

    def _check_outbox_once(self) -> None:
        if not self._outbox_checked:
            self.check_outbox()

    def _ensure_table(self, relation: Relation, columns: Iterable[Column]) -> None:
        existing = self.column_types(relation)
        if existing is None:
            body = ", ".join(f"{self.dialect.identifier(c.name)} {self.dialect.column_type(c.sql)}"
                             for c in columns)
            self._execute(f"create schema if not exists {quote_identifier(relation.schema)}")
            self._execute(
                f"create table if not exists {relation.sql} ({body}){self.dialect.table_options}")
            return
        for column in columns:  # new columns are only ever appended at the end
            if column.name not in existing:
                self._execute(
                    f"alter table {relation.sql} add column {self.dialect.identifier(column.name)}"
                    f" {self.dialect.column_type(column.sql)}"
                )

    @wrap_errors("creating the delivery tables")
    def ensure_delivery_tables(self) -> None:
        """Create the receipts and runs tables (and their schema) when missing; add the columns
        an older sender did not write, at the end. Refuses (WarehouseError) to start a receipts
        table afresh where dbt has it while earlier receipts are in the target's schema."""
        moved = moved_receipts(self.relations, self.target.schema,
                               lambda relation: self.column_types(relation) is not None)
        if moved is not None:
            raise WarehouseError(moved)
        self._ensure_table(self.relations.receipts, RECEIPT_COLUMNS)
        self._ensure_table(self.relations.runs, RUN_COLUMNS)

    # -- pending events -----------------------------------------------------------------------

    def _outbox_select(self) -> str:
        """The OUTBOX_COLUMNS of outbox rows `o`, each cast to its contract type; null for an
        optional column the outbox lacks."""
        self._check_outbox_once()
        return ", ".join(
            f"cast({'null' if c in self._outbox_lacks else 'o.' + c}"
            f" as {self.dialect.column_type(CONTRACT_TYPES[c])}) as {c}"
            for c in OUTBOX_COLUMNS)

    def outbox_has_seq(self) -> bool:
        """Whether the outbox has the outbox_seq column (dbt projects from its introduction on)."""
        self._check_outbox_once()
        return self._outbox_has_seq

    @wrap_errors("planning the pending read")
    def plan_pending(
        self, terminal: Sequence[str], limit: int | None, shard: Shard | None = None,
        *, rescan: bool = False,
    ) -> PendingQuery:
        """What this run reads (`pending`): the new rows since the last complete run and the
        open ones, or the whole history."""
        return PendingQuery(tuple(terminal), limit, shard,
                            plan_window(self, terminal, shard, rescan=rescan))

    def _receipts_sql(
        self, query: PendingQuery, columns: str, *, terminal: bool
    ) -> tuple[str, list[Any]]:
        """`columns` of the production receipts the pending read of `query` matches keys
        against, and the parameters: with `terminal`, the terminal receipts it leaves out (every
        one, or with a window those no older than the rows it reads); else the window's open
        receipts (no older than `open_since`, not terminal), whose rows it reads again."""
        mark, window = self.dialect.param, query.window
        statuses = ", ".join(mark for _ in query.terminal)
        sql = f"select {columns} from {self.receipts} where test_event_code is null"
        if not terminal:
            assert window is not None and window.open_since is not None
            return (f"{sql} and event_time >= {mark} and status not in ({statuses})",
                    [window.open_since, *query.terminal])
        sql += f" and status in ({statuses})"
        params: list[Any] = list(query.terminal)
        if window is not None and window.receipts_since is not None:
            # a receipt carries its row's event_time: none older than the rows read matches
            sql += f" and (event_time >= {mark} or event_time is null)"
            params.append(window.receipts_since)
        return sql, params

    def _pending_sql(self, query: PendingQuery, *, ordered: bool = True) -> tuple[str, list[Any]]:
        """The pending rows of `query`: outbox rows with a full key and without a terminal
        production receipt, within its window (`pending`), optionally of one shard, the `limit`
        oldest first; columns in OUTBOX_COLUMNS order, each cast to its contract type. Where the
        dialect has no `limit_in_sql`, the rows come oldest first and the reader stops after
        `limit`; `ordered=False` leaves the order (and that limit) out, for counting. A row with
        a null key is never pending: no receipt can match it (`unreceipted_null_key_rows` hands
        those out)."""
        self._check_outbox_once()
        mark, window = self.dialect.param, query.window
        params: list[Any] = []
        source = self.outbox
        if window is not None:
            # the rows up to the outbox's highest outbox_seq at the start: those appended later
            # are the next run's
            seq = SEQ_COLUMN
            if window.whole_history:
                source = (f"(select * from {self.outbox} where {seq} <= {mark}"
                          f" or {seq} is null)")
                params.append(window.through_seq)
            else:
                open_keys, keyed = self._receipts_sql(query, RECEIPT_KEYS, terminal=False)
                join, condition = self.dialect.key_filter(open_keys, keep=True)
                source = (
                    f"(select * from {self.outbox} where {seq} > {mark} and {seq} <= {mark}"
                    f" union all select o.* from {self.outbox} o{join}"
                    f" where o.event_time >= {mark}"
                    f" and (o.{seq} <= {mark} or o.{seq} is null)"
                    f"{' and ' + condition if condition else ''})"
                )
                # the keys' values go where the dialect puts them: in the join, or the condition
                bounds = [window.open_since, window.after_seq]
                params.extend([window.after_seq, window.through_seq,
                               *(keyed + bounds if join else bounds + keyed)])
        join, conditions = "", [f"o.{c} is not null" for c in KEY_COLUMNS]
        if "is_erased" not in self._outbox_lacks:
            # a row whose customer asked to be erased is never sent (README, "Consent and erasure")
            conditions.append("(o.is_erased is null or not o.is_erased)")
        if query.terminal and self.column_types(self.relations.receipts) is not None:
            keys, keys_params = self._receipts_sql(query, RECEIPT_KEYS, terminal=True)
            params.extend(keys_params)
            join, condition = self.dialect.key_filter(keys, keep=False)
            if condition:
                conditions.append(condition)
        if query.shard is not None:
            conditions.append(f"{self.dialect.shard_of('o.event_id', mark)} = {mark}")
            params.extend([query.shard.count, query.shard.index - 1])
        sql = (f"select {self._outbox_select()} from {source} o{join}"
               f" where {' and '.join(conditions)}")
        if query.limit is not None and ordered:
            sql += " order by o.event_time, o.event_id"
            if self.dialect.limit_in_sql:
                sql += f" limit {mark}"
                params.append(query.limit)
        return sql, params

    @wrap_errors("counting pending events")
    def count_pending(self, query: PendingQuery) -> int:
        sql, params = self._pending_sql(query, ordered=False)
        _, rows = self.query(f"select count(*) from ({sql}) pending", params)
        count = int(rows[0][0]) if rows else 0
        return count if query.limit is None else min(count, query.limit)

    def expect_receipts(self, events: int) -> None:
        """The run is about to write receipts for up to `events` events while it reads the
        outbox (an engine that needs memory for that takes it here)."""

    @wrap_errors("reading the outbox rows with a null key")
    def unreceipted_null_key_rows(self, shard: Shard | None = None) -> pa.Table:
        """The outbox rows with a null event_source_id, event or event_id (never pending: no
        receipt can match them) that have no receipt of the same `row_fingerprint` yet: the
        OUTBOX_SCHEMA columns, cast as in the pending query, plus the string column
        `row_fingerprint` (`tables.outbox.row_fingerprint` of the row as read; identical rows are
        one row). Give each one receipt, with that fingerprint (`ReceiptFactory.build(...,
        row_fingerprints=...)`), and it is not handed out again. `shard` keeps the rows of one
        shard (by the hash of event_id, a null one counting as ''), so that shards running side by
        side do not both report a row. Read whole: such rows are expected to be few."""
        self._check_outbox_once()
        mark = self.dialect.param
        condition = "(" + " or ".join(f"o.{c} is null" for c in KEY_COLUMNS) + ")"
        params: list[Any] = []
        if shard is not None:
            condition += f" and {self.dialect.shard_of('o.event_id', mark)} = {mark}"
            params.extend([shard.count, shard.index - 1])
        _, rows = self.query(
            f"select {self._outbox_select()} from {self.outbox} o where {condition}", params)
        return unreceipted_rows(rows, receipted_fingerprints(self) if rows else set())

    # -- runs --------------------------------------------------------------------------------

    @wrap_errors("writing the run row")
    def insert_run(self, row: Mapping[str, Any]) -> None:
        names = ", ".join(self.dialect.identifier(k) for k in row)
        marks = ", ".join(self.dialect.param for _ in row)
        self._execute(f"insert into {self.runs} ({names}) values ({marks})", list(row.values()))

    @wrap_errors("updating the run row")
    def update_run(self, run_id: str, row: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{self.dialect.identifier(k)} = {self.dialect.param}" for k in row)
        self._execute(
            f"update {self.runs} set {assignments} where run_id = {self.dialect.param}",
            [*row.values(), run_id],
        )

    @wrap_errors("marking crashed runs")
    def mark_crashed_runs(self, run_id: str, shard: Shard | None) -> int:
        """Mark `crashed` the run rows left `running` that no live process can own, and return
        how many. Call it right after taking the lease (a warehouse opened for writing, the
        tables ensured), before inserting this run's row; `run_id` and `shard` are this run's.

        Which rows: the lease excludes every run that could be alive beside this one. On DuckDB
        (one exclusive file lock) that is every other run, so every `running` row is marked. On
        PostgreSQL an unsharded run marks every `running` row too; a run of shard K/N marks the
        rows of unsharded runs, of shard K/N itself and of another shard count N' (none of which
        can run beside it), never those of the other shards K'/N of its set, which may be alive.

        `finished_at` stays null (when the process ended is unknown); `message` says `the process
        ended without finishing this run (killed?); marked crashed by run <run_id>`."""
        return mark_crashed_runs(self, run_id, shard)

    # -- the lease by claim rows (claims.ClaimLease) ---------------------------------------------

    def sweep_claims(self, relation: Relation, holder: str) -> None:
        """Delete the claim rows of the lease table `relation` that are expired or `holder`'s:
        what is left are the live claims of others."""
        self._execute(f"delete from {relation.sql} where holder = {self.dialect.param}"
                      " or expires_at <= current_timestamp()", [holder])

    # -- status ------------------------------------------------------------------------------

    @wrap_errors("reading the delivery status")
    def status(self) -> StatusReport:
        return delivery_status(self)
