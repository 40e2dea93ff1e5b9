"""The outbox as the sender reads it: its columns, the types they are read as, and the check that
the warehouse's columns can be read as those types.

Every column of OUTBOX_COLUMNS is cast in the pending query to its contract type (CONTRACT_TYPES:
strings to varchar, event_time to bigint, value to double precision), so every engine hands out
batches of OUTBOX_SCHEMA whatever width or flavour of the type the warehouse holds. A column whose
type cannot be cast safely (a timestamp or a string `event_time`, a non-numeric `value`, a
non-string id) is refused before the query runs, with one line saying what to change.

OPTIONAL_COLUMNS came with later versions of the dbt project (consent, device ids, more match
keys): an outbox without one is read with null in its place, so an older outbox still sends.

An outbox row with a null key (event_source_id, event or event_id) can never match a receipt, so
it is not pending; the sender gives it one receipt, once, recognised by `row_fingerprint`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
import pyarrow as pa

OUTBOX_TABLE: Final = "tiktok_events_outbox"

# Outbox columns every outbox has, in the order of the pending query.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "event_source",
    "event_source_id",
    "event_id",
    "event",
    "event_time",
    "email_sha256",
    "phone_sha256",
    "external_id_sha256",
    "ttclid",
    "ttp",
    "ip",
    "user_agent",
    "page_url",
    "value",
    "currency",
    "order_id",
    "experiment_cell",
)
# Outbox columns a later dbt project added, read after REQUIRED_COLUMNS; null where the outbox
# has none. New ones only ever go at the end.
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "limited_data_use",
    "att_status", "idfa", "idfv", "gaid",
    "first_name_sha256", "last_name_sha256", "zip_code_sha256",
    "city", "state", "country", "locale", "is_erased", "properties_predicted_ltv",
    "contents", "content_type", "num_items",
)
# Outbox columns the sender reads, in the order of the pending query.
OUTBOX_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
_BOOLEAN_COLUMNS: Final = frozenset({"limited_data_use", "is_erased"})
_DOUBLE_COLUMNS: Final = frozenset({"value", "properties_predicted_ltv"})
_BIGINT_COLUMNS: Final = frozenset({"event_time", "num_items"})
# The key of an outbox row (its grain), as receipts carry it.
KEY_COLUMNS: Final = ("event_source_id", "event", "event_id")
# The receipts column that recognises an outbox row with a null key.
FINGERPRINT_COLUMN: Final = "row_fingerprint"

# The type each column is read as: the SQL of the cast in the pending query (the same in DuckDB
# and PostgreSQL), and the Arrow type of OUTBOX_SCHEMA.
CONTRACT_TYPES: Final[Mapping[str, str]] = {
    c: "bigint" if c in _BIGINT_COLUMNS else "double precision" if c in _DOUBLE_COLUMNS
    else "boolean" if c in _BOOLEAN_COLUMNS else "varchar"
    for c in OUTBOX_COLUMNS
}
_ARROW_TYPES: Final = {"bigint": pa.int64(), "double precision": pa.float64(), "boolean": pa.bool_(),
                       "varchar": pa.string()}
# The Arrow schema of the pending rows every reader hands out (the outbox contract's types).
OUTBOX_SCHEMA = pa.schema([(c, _ARROW_TYPES[CONTRACT_TYPES[c]]) for c in OUTBOX_COLUMNS])

# information_schema.columns.data_type values (upper-cased, without a `(...)` suffix) that cast
# safely to each contract type. DuckDB and Snowflake spell them in capitals, PostgreSQL in lower
# case.
INTEGER_TYPES: Final = frozenset({
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",  # DuckDB, and PostgreSQL's three
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
    "INT1", "INT2", "INT4", "INT8", "INT", "SHORT", "LONG",
})
NUMERIC_TYPES: Final = INTEGER_TYPES | frozenset({
    "DOUBLE", "DOUBLE PRECISION", "FLOAT", "FLOAT4", "FLOAT8", "REAL", "DECIMAL", "NUMERIC",
    "NUMBER",  # Snowflake's fixed-point type
})
STRING_TYPES: Final = frozenset({
    "VARCHAR", "TEXT", "STRING", "CHARACTER VARYING", "CHARACTER", "CHAR", "BPCHAR", "ENUM",
})
BOOLEAN_TYPES: Final = frozenset({"BOOLEAN", "BOOL"})
_ALLOWED: Final = {
    "bigint": INTEGER_TYPES, "double precision": NUMERIC_TYPES, "varchar": STRING_TYPES,
    "boolean": BOOLEAN_TYPES,
}
_HINTS: Final = {
    "bigint": "it must be Unix seconds as an integer, "
              "e.g. `cast(extract(epoch from <timestamp>) as bigint)`",
    "double precision": "it must be a number, e.g. `cast(<value> as double precision)`",
    "varchar": "it must be a string, e.g. `cast(<column> as varchar)`",
    "boolean": "it must be a boolean, e.g. `cast(<column> as boolean)`",
}
_BASE_TYPE = re.compile(r"\s*([A-Za-z][A-Za-z0-9 ]*?)\s*(\(.*)?$")


def castable(data_type: str, contract_type: str) -> bool:
    """Whether a column of `data_type` (as information_schema gives it) reads safely as
    `contract_type` (a value of CONTRACT_TYPES)."""
    match = _BASE_TYPE.match(data_type)
    base = match.group(1).upper() if match else data_type.upper()
    return base in _ALLOWED[contract_type]


def type_problem(table: str, types: Mapping[str, str]) -> str | None:
    """One line naming the first outbox column (of OUTBOX_COLUMNS present in `types`, a mapping of
    column name to data_type) that cannot be read as its contract type, or None when all can."""
    wrong = [c for c in OUTBOX_COLUMNS if c in types and not castable(types[c], CONTRACT_TYPES[c])]
    if not wrong:
        return None
    column, contract = wrong[0], CONTRACT_TYPES[wrong[0]]
    more = f" (and {len(wrong) - 1} more: {', '.join(wrong[1:])})" if len(wrong) > 1 else ""
    return (
        f"outbox table {table}: column {column} is {types[column]}, which does not read as the "
        f"contract type {contract}: {_HINTS[contract]}{more}"
    )


def row_fingerprint(values: Sequence[Any]) -> str:
    """SHA-256 (hex) of a row's REQUIRED_COLUMNS values as read (the first values of an
    OUTBOX_COLUMNS row), in that order, as JSON (orjson): the optional columns are left out, so a
    row keeps its fingerprint when its outbox gains them.

    Computed in Python from the values of OUTBOX_SCHEMA, so it is the same on every engine."""
    return hashlib.sha256(orjson.dumps(list(values[:len(REQUIRED_COLUMNS)]))).hexdigest()


def unreceipted_rows(rows: Sequence[Sequence[Any]], receipted: set[str]) -> pa.Table:
    """The `rows` (OUTBOX_COLUMNS values, as read) whose fingerprint is not in `receipted`, as
    OUTBOX_SCHEMA columns plus FINGERPRINT_COLUMN; of identical rows only the first is kept."""
    kept: list[Sequence[Any]] = []
    fingerprints: list[str] = []
    seen = set(receipted)
    for row in rows:
        fingerprint = row_fingerprint(row)
        if fingerprint not in seen:
            seen.add(fingerprint)
            kept.append(row)
            fingerprints.append(fingerprint)
    columns = list(zip(*kept, strict=True)) if kept else [() for _ in OUTBOX_COLUMNS]
    arrays = [pa.array(c, type=f.type) for c, f in zip(columns, OUTBOX_SCHEMA, strict=True)]
    schema = OUTBOX_SCHEMA.append(pa.field(FINGERPRINT_COLUMN, pa.string()))
    return pa.Table.from_arrays([*arrays, pa.array(fingerprints, pa.string())], schema=schema)
