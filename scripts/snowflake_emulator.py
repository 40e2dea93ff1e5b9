#!/usr/bin/env python3
"""Snowflake, emulated: a local fakesnow server for the `snowflake_emulated` target.

Usage (from .venv-snowflake, `make setup-snowflake`; fakesnow pins a DuckDB of its own)::

    .venv-snowflake/bin/python scripts/snowflake_emulator.py [--port 8085] [--db-path DIR]

then, in another shell, `FAKESNOW_PORT=8085 .venv-snowflake/bin/dbt build --target snowflake_emulated`.

fakesnow answers Snowflake's HTTP protocol (the one snowflake-connector-python, and so dbt-snowflake,
speaks) on 127.0.0.1 and runs each statement on an in-memory DuckDB after translating it with
sqlglot. It is an emulator: a build that passes here shows that the project's Snowflake SQL parses
and computes the same results under fakesnow's translation, not that Snowflake accepts it.

Where fakesnow lacks a Snowflake feature the project uses, this script teaches it, so the models
keep the SQL real Snowflake runs:
- `to_number(<hex>, 'XXXXXXXX')` (hexadecimal format models, macros/cross_db/hex_prefix_to_int.sql):
  fakesnow implements no format argument of to_number.
- `create table t (<columns>, primary key (...)) as select ...` (dbt-snowflake's DDL for a model
  with an enforced contract and a primary key constraint, the outbox): fakesnow counts the
  constraint as a column and refuses the column list. Snowflake does not enforce primary keys, so
  the emulator drops the constraint from such a statement.
- NOT NULL constraints of `create table t (<columns>) as select ...` (the outbox contract):
  fakesnow turns the column list into casts and drops the constraints, so the emulator follows
  such a statement with `alter table t alter column c set not null` for each of them. A null
  in such a column fails the statement as Snowflake's does (error 100072), not with the HTTP 500
  fakesnow answers DuckDB's constraint errors with, which the connector retries for minutes.
- `create temporary table|view <database>.<schema>.<name>`, as dbt-core's unit-test
  materialization and dbt-snowflake's incremental models write their scratch relations: DuckDB
  keeps temporary objects in a catalog of their own and refuses a qualified name. The emulator
  creates an ordinary table or view of that name instead; dbt drops it after a unit test, and
  replaces it (create or replace) at the next incremental run.
- sum / avg / stddev / variance / median keep the type of their argument: fakesnow casts every
  argument to DOUBLE (to accept strings, as Snowflake casts VARCHAR implicitly), which makes the sum
  of integers a DOUBLE where Snowflake's is a NUMBER (`cast(sum(...) as varchar)` reads '2.0', not
  '2'). The project aggregates no strings (DuckDB and PostgreSQL would refuse it), so the emulator
  leaves the arguments as they are.
- `copy into t from @stage` without a FILE_FORMAT reads the files in the format the stage was
  created with, as Snowflake does: fakesnow keeps no file format with a stage and reads them as
  CSV. The ADBC Snowflake driver appends (the sender's receipts) this way: it creates a temporary
  stage `FILE_FORMAT = (TYPE = PARQUET ...)`, PUTs Parquet files and copies from the stage.
- a stage created anew (`create or replace stage`) holds new files: Snowflake's load history
  knows a file by its name and checksum, so a new file of an old name loads, while fakesnow's
  knows it by name alone and skips it ("File was loaded before"). The ADBC driver replaces its
  stage at every append and names the files 0.parquet, 1.parquet...: from the second append on,
  fakesnow loaded nothing. The first COPY from a stage created anew forgets the load history of
  the stage's earlier files.
- `alter session set timezone = 'UTC'` (the sender's sessions run in UTC): fakesnow implements
  no ALTER SESSION of TIMEZONE, and its DuckDB runs in UTC already, so the emulator accepts that
  one value and still refuses any other zone.
- a null timestamp in a result reads as 1970-01-01 00:00:00 through the connector: fakesnow sends
  Snowflake's timestamp struct (epoch, fraction) without a validity mask. The emulator marks the
  null rows null.

Databases live in memory, for as long as the server runs, unless --db-path names a directory
to keep them in (one DuckDB file per database).

Prints `ready http://127.0.0.1:PORT` once clients can connect, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import fakesnow.arrow
import fakesnow.copy_into
import fakesnow.cursor
import fakesnow.server
import fakesnow.transforms.stage
import pyarrow as pa
import pyarrow.compute as pc
import snowflake.connector.errors
import uvicorn
from fakesnow import transforms
from fakesnow.dialect import parse_one
from fakesnow.instance import FakeSnow
from sqlglot import exp

HEX_FORMAT = re.compile(r"X+", re.IGNORECASE)


def _hex_to_number(to_decimal: Any) -> Any:
    """fakesnow's to_number translation, plus Snowflake's hexadecimal format models (`'XXXX'`)."""
    def translate(expression: exp.Expr) -> exp.Expr:
        if isinstance(expression, exp.ToNumber):
            fmt = expression.args.get("format")
            if isinstance(fmt, exp.Literal) and fmt.is_string and HEX_FORMAT.fullmatch(fmt.this):
                hex_literal = exp.DPipe(this=exp.Literal.string("0x"), expression=expression.this)
                as_integer = exp.Cast(this=hex_literal, to=exp.DataType.build("UBIGINT", dialect="duckdb"))
                return exp.Cast(this=as_integer, to=exp.DataType.build("DECIMAL(38, 0)", dialect="duckdb"))
        return to_decimal(expression)
    return translate


def _create_table(create_table_as: Any) -> Any:
    """fakesnow's create-table-as translation, for column lists that end in table constraints and
    for temporary tables and views with a qualified name."""
    def translate(expression: exp.Expr, duck_conn: Any) -> exp.Expr:
        if isinstance(expression, exp.Create) and expression.kind in ("TABLE", "VIEW"):
            target = expression.this
            if isinstance(target, exp.Schema) and expression.expression is not None:
                target.set("expressions", [e for e in target.expressions if isinstance(e, exp.ColumnDef)])
            table = target.this if isinstance(target, exp.Schema) else target
            properties = expression.args.get("properties")
            if isinstance(table, exp.Table) and table.catalog and properties is not None:
                kept = [p for p in properties.expressions if not isinstance(p, exp.TemporaryProperty)]
                properties.set("expressions", kept)
        return create_table_as(expression, duck_conn)
    return translate


def _ctas_keeps_not_null(create_table_autoincrement: Any) -> Any:
    """fakesnow's statement splitting, plus a create-table-as with NOT NULL columns split into the
    statement and one `alter column ... set not null` per column."""
    def split(expression: exp.Expr) -> list[exp.Expr]:
        statements = create_table_autoincrement(expression)
        if len(statements) > 1 or not (isinstance(expression, exp.Create) and expression.kind == "TABLE"
                                       and isinstance(expression.this, exp.Schema)
                                       and expression.expression is not None):
            return statements
        table = expression.this.this.sql(dialect="snowflake")
        not_null = [c.this.sql(dialect="snowflake") for c in expression.this.expressions
                    if isinstance(c, exp.ColumnDef)
                    and any(isinstance(k.args.get("kind"), exp.NotNullColumnConstraint)
                            and not k.args["kind"].args.get("allow_null") for k in c.constraints)]
        return [expression, *(parse_one(f"alter table {table} alter column {c} set not null") for c in not_null)]
    return split


def _constraint_errors_as_snowflake_errors(execute: Any) -> Any:
    """fakesnow's cursor.execute, with DuckDB's constraint violations raised as Snowflake's."""
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, *args, **kwargs)
        except duckdb.ConstraintException as e:
            raise snowflake.connector.errors.ProgrammingError(
                msg=f"NULL result in a non-nullable column ({e})", errno=100072, sqlstate="22000") from None
    return run


def _numeric_agg_as_is(expression: exp.Expr) -> exp.Expr:
    return expression


def _timestamps_keep_nulls(timestamp_to_sf_struct: Any) -> Any:
    """fakesnow's Arrow timestamp struct, with the rows of null timestamps null."""
    def convert(ts: pa.Array | pa.ChunkedArray) -> pa.Array:
        if isinstance(ts, pa.ChunkedArray):
            ts = ts.combine_chunks()
        struct = timestamp_to_sf_struct(pc.fill_null(ts, pa.scalar(0, type=ts.type)))
        if not ts.null_count:
            return struct
        return pa.StructArray.from_arrays(struct.flatten(), fields=list(struct.type), mask=ts.is_null())
    return convert


# (database, schema, name) of the stages created with FILE_FORMAT = (TYPE = PARQUET ...), and of
# the stages created anew and not copied from since
_PARQUET_STAGES: set[tuple[str, str, str]] = set()
_NEW_STAGES: set[tuple[str, str, str]] = set()
_PARQUET_FORMAT = re.compile(r"FILE_FORMAT\s*=\s*\(\s*TYPE\s*=\s*'?PARQUET\b", re.IGNORECASE)


def _stage_keeps_format(create_stage: Any) -> Any:
    """fakesnow's CREATE STAGE, remembering the stages whose file format is Parquet."""
    def create(expression: exp.Expr, current_database: str | None, current_schema: str | None) -> Any:
        kind = expression.args.get("kind") if isinstance(expression, exp.Create) else None
        if isinstance(kind, str) and kind.upper() == "STAGE" and (table := expression.find(exp.Table)):
            name = ".".join(p for p in (table.catalog, table.db, table.name) if p)
            key = fakesnow.transforms.stage.parts_from_var(name, current_database, current_schema)
            if _PARQUET_FORMAT.search(expression.sql(dialect="snowflake")):
                _PARQUET_STAGES.add(key)
            else:
                _PARQUET_STAGES.discard(key)
            _NEW_STAGES.add(key)
        return create_stage(expression, current_database, current_schema)
    return create


def _copy_reads_stage_format(params: Any) -> Any:
    """fakesnow's COPY parameters, with the stage's Parquet format when the COPY names none; the
    first COPY from a stage created anew forgets its earlier files' load history."""
    def read(expr: exp.Copy, *args: Any, **kwargs: Any) -> Any:
        cparams = params(expr, *args, **kwargs)
        source = fakesnow.copy_into._from_source(expr)
        if not source.startswith("@"):
            return cparams
        key = fakesnow.transforms.stage.parts_from_var(
            source[1:], kwargs.get("current_database"), kwargs.get("current_schema"))
        named = any(p.this.name.upper() == "FILE_FORMAT" for p in expr.args.get("params") or [])
        if not named and key in _PARQUET_STAGES:
            cparams.file_format = fakesnow.copy_into.ReadParquet()
        if key in _NEW_STAGES and kwargs.get("duck_conn") is not None:
            _NEW_STAGES.discard(key)
            root = fakesnow.transforms.stage.internal_dir(".".join(key))
            kwargs["duck_conn"].execute(
                "delete from _fs_information_schema._fs_load_history where contains(file_name, ?)",
                [root])
        return cparams
    return read


def _session_in_utc(alter_session: Any) -> Any:
    """fakesnow's ALTER SESSION, plus `set timezone = 'UTC'`: what its DuckDB runs in already."""
    def alter(expression: exp.Expr) -> exp.Expr:
        item = expression.find(exp.SetItem) if isinstance(expression, exp.Alter) else None
        if (isinstance(item, exp.SetItem) and isinstance(item.this, exp.EQ)
                and item.this.this.name.upper() == "TIMEZONE"
                and isinstance(rhs := item.this.expression, exp.Literal)
                and rhs.this.upper() in ("UTC", "ETC/UTC")):
            return transforms.SUCCESS_NOP.copy()
        return alter_session(expression)
    return alter


def teach_fakesnow() -> None:
    """Install the translations listed in the module docstring (fakesnow's cursor looks its
    transforms up on the module at every statement)."""
    transforms.to_decimal = _hex_to_number(transforms.to_decimal)
    transforms.create_table_as = _create_table(transforms.create_table_as)
    transforms.create_table_autoincrement = _ctas_keeps_not_null(transforms.create_table_autoincrement)
    transforms.numeric_agg_implicit_cast = _numeric_agg_as_is
    transforms.create_stage = _stage_keeps_format(transforms.create_stage)
    transforms.alter_session = _session_in_utc(transforms.alter_session)
    fakesnow.copy_into._params = _copy_reads_stage_format(fakesnow.copy_into._params)
    cursor = fakesnow.cursor.FakeSnowflakeCursor
    cursor.execute = _constraint_errors_as_snowflake_errors(cursor.execute)
    fakesnow.arrow.timestamp_to_sf_struct = _timestamps_keep_nulls(fakesnow.arrow.timestamp_to_sf_struct)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db-path", type=Path, help="keep the databases in this directory (default: in memory)")
    args = parser.parse_args()

    teach_fakesnow()
    if args.db_path:
        args.db_path.mkdir(parents=True, exist_ok=True)
        fakesnow.server.shared_fs = FakeSnow(db_path=args.db_path)
    server = uvicorn.Server(uvicorn.Config(fakesnow.server.app, host=args.host, port=args.port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="fakesnow", daemon=True)
    thread.start()
    while thread.is_alive() and not server.started:
        time.sleep(0.05)
    if not server.started:
        sys.exit(f"fakesnow could not listen on {args.host}:{args.port}")
    print(f"ready http://{args.host}:{args.port}", flush=True)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while thread.is_alive() and not stop.wait(0.5):
        pass
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
