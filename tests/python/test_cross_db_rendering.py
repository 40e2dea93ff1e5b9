"""Every dispatched macro rendered for every warehouse, and the SQL text checked.

dbt-snowflake, dbt-bigquery and dbt-spark/dbt-databricks cannot be installed here, so the macros of
macros/cross_db, macros/identity and macros/tiktok are rendered with jinja2 directly, the way dbt
renders them: each macro compiled on its own, `adapter.dispatch(name, namespace)` resolving
`<adapter>__<name>` along the adapter's inheritance (databricks -> spark -> default), `return()`
raising a value that the call site catches, `var()` with the defaults of dbt_project.yml, and the
three `dbt.type_*` macros the project's macros use, as dbt-core computes them from each adapter's
column type labels, and `adapter.get_columns_in_relation` answering with the column types a test
sets. For duckdb and postgres the renderer's output is compared with `dbt compile`
(the real adapters), and the rendered SQL is executed on DuckDB and on a real PostgreSQL server
against Python's own answers (hashlib, the normalisation rules). Snowflake, BigQuery and
Databricks SQL is only rendered and checked as text.
"""

from __future__ import annotations

import calendar
import hashlib
import math
import os
import re
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import pytest
import yaml

from dbt_harness import DEMO_ENV, PROJECT_ROOT, VENV_BIN, dbt_env
from tiktok_sender.api.payload import parse_contents

pytest_plugins = ["pg_fixtures"]

MACRO_DIRS = ("macros/cross_db", "macros/identity", "macros/tiktok")
ADAPTERS = ("duckdb", "postgres", "snowflake", "bigquery", "spark", "databricks")
EXECUTED = ("duckdb", "postgres")
# dbt's dispatch order: the adapter, the adapters it inherits from, then default.
SEARCH_ORDER = {adapter: (adapter, "default") for adapter in ADAPTERS}
SEARCH_ORDER["databricks"] = ("databricks", "spark", "default")
NAMESPACE = "tiktok_outbox"
AS_OF = "2026-11-25 06:00:00"
SALT = "tiktok-pltv-2026"

# dbt-core's default__type_* with each adapter's Column.translate_type / numeric_type, and
# dbt-bigquery's own bigquery__type_numeric.
DBT_TYPES: dict[str, dict[str, str]] = {
    "type_string": {"duckdb": "TEXT", "postgres": "TEXT", "snowflake": "TEXT", "bigquery": "STRING",
                    "spark": "string", "databricks": "string"},
    "type_timestamp": {"duckdb": "timestamp", "postgres": "timestamp", "snowflake": "timestamp",
                       "bigquery": "TIMESTAMP", "spark": "timestamp", "databricks": "timestamp"},
    "type_numeric": {"duckdb": "numeric(28,6)", "postgres": "numeric(28,6)", "snowflake": "numeric(28,6)",
                     "bigquery": "numeric", "spark": "numeric(28,6)", "databricks": "numeric(28,6)"},
}

MACRO_BLOCK = re.compile(
    r"\{%-?\s*macro\s+(?P<name>\w+)\s*\(.*?\)\s*-?%\}.*?\{%-?\s*endmacro\s*-?%\}", re.DOTALL
)


class MacroReturn(Exception):  # noqa: N818 - named after dbt's own
    """What dbt's return() raises: the value travels to the macro call that catches it."""

    def __init__(self, value: Any) -> None:
        self.value = value


class CompilationError(Exception):
    pass


def dbt_return(value: Any) -> None:
    raise MacroReturn(value)


class Namespace:
    def __init__(self, macros: dict[str, Callable[..., Any]]) -> None:
        self._macros = macros

    def __getattr__(self, name: str) -> Callable[..., Any]:
        try:
            return self._macros[name]
        except KeyError:
            raise CompilationError(f"no macro {name!r} in this namespace") from None


class Column:
    def __init__(self, name: str, dtype: str) -> None:
        self.name = name
        self.dtype = dtype


class Adapter:
    def __init__(self, adapter_type: str, namespaces: dict[str, dict[str, Callable[..., Any]]]) -> None:
        self.type = adapter_type
        self.namespaces = namespaces
        self.dispatched: list[tuple[str, str]] = []  # (macro, implementation), for the tests
        self.columns: dict[str, dict[str, str]] = {}  # relation -> column -> type, set by a test

    def get_columns_in_relation(self, relation: str) -> list[Column]:
        return [Column(name, dtype) for name, dtype in self.columns.get(relation, {}).items()]

    def dispatch(self, macro_name: str, macro_namespace: str | None = None) -> Callable[..., Any]:
        macros = self.namespaces[macro_namespace or NAMESPACE]
        for prefix in SEARCH_ORDER[self.type]:
            candidate = f"{prefix}__{macro_name}"
            if candidate in macros:
                self.dispatched.append((macro_name, candidate))
                return macros[candidate]
        raise CompilationError(f"no implementation of {macro_name} for {self.type}")


class Exceptions:
    @staticmethod
    def raise_compiler_error(message: str) -> None:
        raise CompilationError(message)


def project_vars() -> dict[str, Any]:
    raw = yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text())["vars"]
    env = jinja2.Environment()
    environ = {**os.environ, **DEMO_ENV}  # what dbt sees in the tests (dbt_harness.dbt_env)
    env_var = lambda name, default=None: environ.get(name, default)  # noqa: E731
    return {k: env.from_string(v).render(env_var=env_var) if isinstance(v, str) and "{{" in v else v
            for k, v in raw.items()}


def macro_sources() -> dict[str, str]:
    """name -> the macro's own `{% macro %}...{% endmacro %}` text, as dbt stores each macro."""
    found: dict[str, str] = {}
    for folder in MACRO_DIRS:
        for path in sorted((PROJECT_ROOT / folder).glob("*.sql")):
            for block in MACRO_BLOCK.finditer(path.read_text()):
                assert block["name"] not in found, f"macro {block['name']} defined twice"
                found[block["name"]] = block.group(0)
    return found


class Renderer:
    """The project's macros for one adapter."""

    def __init__(self, adapter_type: str, variables: dict[str, Any] | None = None) -> None:
        self.variables = {**project_vars(), **(variables or {})}
        self.env = jinja2.Environment(extensions=["jinja2.ext.do"])
        project: dict[str, Callable[..., Any]] = {}
        dbt_macros: dict[str, Callable[..., Any]] = {
            name: (lambda value=per_adapter[adapter_type]: value) for name, per_adapter in DBT_TYPES.items()
        }
        dbt_macros["dateadd"] = self._dbt_dateadd(adapter_type)
        self.adapter = Adapter(adapter_type, {NAMESPACE: project, "dbt": dbt_macros})
        self.context: dict[str, Any] = {
            **self.env.globals,
            "adapter": self.adapter,
            "return": dbt_return,
            "var": self.var,
            "exceptions": Exceptions(),
            "run_started_at": datetime(2026, 11, 25, 6, 0, 0),
            "is_incremental": lambda: False,
            "execute": True,
            "target": {"type": adapter_type, "name": adapter_type},
            "graph": {},  # as in a unit test: no nodes, so no outbox is looked up
            NAMESPACE: Namespace(project),
            "dbt": Namespace(dbt_macros),
        }
        for name, source in macro_sources().items():
            # jinja keeps _private macros out of a module's attributes: compile under a public alias
            alias = f"m{name}" if name.startswith("_") else name
            source = source.replace(f"macro {name}(", f"macro {alias}(", 1)
            module = self.env.from_string(source).make_module(self.context, shared=True)
            project[name] = self._call_site(getattr(module, alias))
        self.context.update(project)  # callable by bare name too, as in dbt

    def _dbt_dateadd(self, adapter_type: str) -> Callable[..., Any]:
        """dbt's own dateadd as the installed adapter packages define it (dbt-duckdb's,
        dbt-postgres's and dbt-spark's; dbt-core's default for the adapters not installed here,
        whose own variants are dbt's SQL, not this project's)."""
        import dbt.include

        include = Path(dbt.include.__path__[0])
        own = include / adapter_type / "macros" / "utils" / "dateadd.sql"
        path = own if own.exists() else include / "global_project" / "macros" / "utils" / "dateadd.sql"
        block = next(b for b in MACRO_BLOCK.finditer(path.read_text()) if b["name"].endswith("__dateadd"))
        helpers: dict[str, Any] = {}  # dbt-spark's dateadd calls its assert_not_null
        helper = include / adapter_type / "macros" / "utils" / "assert_not_null.sql"
        if own.exists() and helper.exists():
            found = next(b for b in MACRO_BLOCK.finditer(helper.read_text())
                         if b["name"] == f"{adapter_type}__assert_not_null")
            helper_module = self.env.from_string(found.group(0)).make_module({}, shared=False)
            helpers["assert_not_null"] = getattr(helper_module, found["name"])
        module = self.env.from_string(block.group(0)).make_module(helpers, shared=False)
        macro = getattr(module, block["name"])
        return lambda datepart, interval, from_date_or_timestamp: str(macro(datepart, interval, from_date_or_timestamp))

    def var(self, name: str, default: Any = None) -> Any:
        if name in self.variables:
            return self.variables[name]
        return default

    @staticmethod
    def _call_site(macro: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return macro(*args, **kwargs)
            except MacroReturn as returned:
                return returned.value
        return call

    def call(self, macro: str, *sql: str) -> str:
        """Render tiktok_outbox.<macro>(*sql), each argument a SQL expression passed as a string."""
        args = ", ".join(f"arg{i}" for i in range(len(sql)))
        template = self.env.from_string("{{ " + NAMESPACE + "." + macro + "(" + args + ") }}")
        return template.render({**self.context, **{f"arg{i}": a for i, a in enumerate(sql)}}).strip()

    def render(self, call: str) -> str:
        """Render `{{ tiktok_outbox.<call> }}`, e.g. call = "sha256_hex('email')"."""
        return self.env.from_string("{{ " + NAMESPACE + "." + call + " }}").render(self.context).strip()


@pytest.fixture(scope="module")
def renderers() -> dict[str, Renderer]:
    return {adapter: Renderer(adapter, {"tiktok_as_of": AS_OF}) for adapter in ADAPTERS}


# One call per public macro of the three folders (a test makes sure none is missing).
CALLS: dict[str, str] = {
    "sha256_hex": "sha256_hex('x')",
    "regexp_replace_all": "regexp_replace_all('x', '[ \\\\t]+', '')",
    "regexp_full_match": "regexp_full_match('x', '[0-9]+')",
    "to_unix_seconds": "to_unix_seconds('ts')",
    "is_finite_number": "is_finite_number('v')",
    "percentile": "percentile('v', 0.9)",
    "hex_prefix_to_int": "hex_prefix_to_int('h')",
    "type_double": "type_double()",
    "type_varchar": "type_varchar()",
    "round_money": "round_money('v')",
    "hash_identifier": "hash_identifier('e')",
    "is_sha256_hex": "is_sha256_hex('e')",
    "normalize_email": "normalize_email('e')",
    "normalize_external_id": "normalize_external_id('c')",
    "trim_whitespace": "trim_whitespace('e')",
    "phone_compact": "phone_compact('p')",
    "phone_e164": "phone_e164('p', 'cc', 'tp', 'mn', 'mx')",
    "experiment_bucket": "experiment_bucket('u')",
    "experiment_cell": "experiment_cell('b')",
    "experiment_geo_unit": "experiment_geo_unit('g', 'c', 's')",
    "most_specific_rule": "most_specific_rule('k', 'r', [('a_key', 'a'), ('b_key', 'b')], 'v', "
                          "exact=[('e_key', 'e')], where='rules.v is not null')",
    "tiktok_as_of": "tiktok_as_of()",
    "tiktok_event_source_id": "tiktok_event_source_id('s')",
    "not_yet_in_this": "not_yet_in_this('conversion_id', 'c.conversion_id')",
    "lower_unicode": "lower_unicode('e')",
    "trim_spaces": "trim_spaces('e')",
    "source_text": "source_text('e')",
    "timestamp_to_utc": "timestamp_to_utc('ts', 'timestamp with time zone')",
    "source_column_types": "source_column_types('src')",
    "source_timestamp_utc": "source_timestamp_utc({'ts': 'timestamp with time zone'}, 'ts')",
    "outbox_relation": "outbox_relation() is none",  # a relation, not SQL: none without the graph
    "is_sent": "is_sent('c.conversion_id')",
    "sendable_since": "sendable_since()",
    "outbox_seq": "outbox_seq()",
    "is_open_conversion": "is_open_conversion('c.conversion_id', 'c.converted_at')",
    "needs_evaluation": "needs_evaluation('c.conversion_id', 'c.converted_at')",
    "select_needing_evaluation": "select_needing_evaluation('conversions', 'c')",
    "normalize_device_id": "normalize_device_id('d', 'upper')",
    "normalize_att_status": "normalize_att_status('a', 'p')",
    "normalize_hashed_text": "normalize_hashed_text('n')",
    "normalize_place": "normalize_place('c')",
    "normalize_locale": "normalize_locale('l')",
    "optional_source_text": "optional_source_text({'e': 'varchar'}, 'e')",
    "contents_json": "contents_json('n', 'i', 'm', 'q', 'p')",
    "iso_week_start": "iso_week_start('ts')",
}

# The exact SQL of every dispatched macro, per adapter.
# DuckDB's trim() removes the 17 Unicode space separators; trim_spaces calls it only when one is at an edge.
SPACES = " || ".join(f"chr({code})" for code in (32, 160, 5760, *range(8192, 8203), 8239, 8287, 12288))
DUCKDB_TRIM = (f"(case when contains({SPACES}, (e)[1]) or contains({SPACES}, (e)[-1])\n"
               "        then trim(e) else (e) end)")

EXPECTED: dict[str, dict[str, str]] = {
    "contents_json": {
        "duckdb": "cast(to_json(list({'content_id': i, 'content_name': m, 'quantity': q, 'price': p} order by n))"
                  " as varchar)",
        "postgres": "cast(json_agg(json_build_object('content_id', i, 'content_name', m, 'quantity', q, 'price', p)"
                    " order by n) as TEXT)",
        "snowflake": "to_json(array_agg(object_construct_keep_null('content_id', i, 'content_name', m, 'quantity',"
                     " q, 'price', p)) within group (order by n))",
        "bigquery": "to_json_string(array_agg(struct(i as content_id, m as content_name, q as quantity, p as price)"
                    " order by n))",
        "spark": "to_json(array_sort(collect_list(named_struct('line', n, 'content_id', i, 'content_name', m,"
                 " 'quantity', q, 'price', p))))",
        "databricks": "to_json(array_sort(collect_list(named_struct('line', n, 'content_id', i, 'content_name', m,"
                      " 'quantity', q, 'price', p))))",
    },
    "trim_spaces": {
        "duckdb": DUCKDB_TRIM,
        "postgres": "trim(e)",
        "snowflake": "trim(e)",
        "bigquery": "trim(e)",
        "spark": "trim(e)",
        "databricks": "trim(e)",
    },
    "sha256_hex": {
        "duckdb": "sha256(x)",
        "postgres": "encode(sha256(convert_to(x, 'UTF8')), 'hex')",
        "snowflake": "lower(sha2(x, 256))",
        "bigquery": "to_hex(sha256(x))",
        "spark": "lower(sha2(x, 256))",
        "databricks": "lower(sha2(x, 256))",
    },
    "regexp_replace_all": {
        "duckdb": r"regexp_replace(x, '[ \t]+', '', 'g')",
        "postgres": r"regexp_replace(x, '[ \t]+', '', 'g')",
        "snowflake": r"regexp_replace(x, '[ \t]+', '')",  # Snowflake and Spark replace every match
        "bigquery": r"regexp_replace(x, r'[ \t]+', '')",
        "spark": r"regexp_replace(x, '[ \t]+', '')",
        "databricks": r"regexp_replace(x, '[ \t]+', '')",
    },
    "regexp_full_match": {
        "duckdb": "regexp_full_match(x, '[0-9]+')",
        "postgres": "(x ~ '^(?:[0-9]+)$')",
        "snowflake": "regexp_like(x, '[0-9]+')",  # Snowflake anchors regexp_like at both ends
        "bigquery": "regexp_contains(x, r'^(?:[0-9]+)$')",
        "spark": "(x rlike '^(?:[0-9]+)$')",
        "databricks": "(x rlike '^(?:[0-9]+)$')",
    },
    "to_unix_seconds": {
        "duckdb": "cast(floor(epoch(ts)) as bigint)",
        "postgres": "cast(floor(extract(epoch from ts)) as bigint)",
        "snowflake": "cast(date_part(epoch_second, ts) as bigint)",
        "bigquery": "unix_seconds(timestamp(ts))",
        "spark": "cast(unix_timestamp(ts) as bigint)",
        "databricks": "cast(unix_timestamp(ts) as bigint)",
    },
    "is_finite_number": {
        "duckdb": "coalesce(isfinite(v), false)",
        "postgres": "(v is not null and v not in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8))",
        "snowflake": "(v is not null and v not in ('NaN'::float, 'inf'::float, '-inf'::float))",
        "bigquery": "(v is not null and not is_nan(v) and not is_inf(v))",
        "spark": "(v is not null and not isnan(v) and abs(v) != double('infinity'))",
        "databricks": "(v is not null and not isnan(v) and abs(v) != double('infinity'))",
    },
    "percentile": {
        "duckdb": "quantile_cont(v, 0.9)",
        "postgres": "percentile_cont(0.9) within group (order by v)",
        "snowflake": "percentile_cont(0.9) within group (order by v)",
        # exact: the sorted values around position 0.9 * (n - 1), linearly interpolated
        "bigquery": "(array_agg(v ignore nulls order by v)"
                    "[safe_offset(cast(floor((0.9 * (count(v) - 1))) as int64))]"
                    " * (1 - ((0.9 * (count(v) - 1)) - floor((0.9 * (count(v) - 1)))))\n"
                    "     + array_agg(v ignore nulls order by v)"
                    "[safe_offset(cast(ceil((0.9 * (count(v) - 1))) as int64))]"
                    " * ((0.9 * (count(v) - 1)) - floor((0.9 * (count(v) - 1)))))",
        "spark": "percentile(v, 0.9)",
        "databricks": "percentile(v, 0.9)",
    },
    "type_varchar": {
        "duckdb": "varchar", "postgres": "varchar", "snowflake": "varchar",
        "bigquery": "string", "spark": "string", "databricks": "string",
    },
    "hex_prefix_to_int": {
        "duckdb": "cast(('0x' || substr(h, 1, 8)) as bigint)",
        "postgres": "('x' || substr(h, 1, 8))::bit(32)::bigint",
        "snowflake": "to_number(substr(h, 1, 8), 'XXXXXXXX')",
        "bigquery": "cast(concat('0x', substr(h, 1, 8)) as int64)",
        "spark": "cast(conv(substr(h, 1, 8), 16, 10) as bigint)",
        "databricks": "cast(conv(substr(h, 1, 8), 16, 10) as bigint)",
    },
    "lower_unicode": {
        "duckdb": "lower(e)",
        "postgres": 'lower(e collate "und-x-icu")',  # the database's LC_CTYPE may be C: ASCII only
        "snowflake": "lower(e)",
        "bigquery": "lower(e)",
        "spark": "lower(e)",
        "databricks": "lower(e)",
    },
    "timestamp_to_utc": {  # of a column with a time zone
        "duckdb": "timezone('UTC', ts)",
        "postgres": "(ts at time zone 'UTC')",
        "snowflake": "cast(convert_timezone('UTC', ts) as timestamp_ntz)",
        "bigquery": "cast(ts as TIMESTAMP)",  # TIMESTAMP is an instant
        "spark": "cast(ts as timestamp)",  # an instant, shown in the session's time zone
        "databricks": "cast(ts as timestamp)",
    },
    "iso_week_start": {
        "duckdb": "cast(date_trunc('week', ts) as date)",
        "postgres": "cast(date_trunc('week', ts) as date)",
        "snowflake": "dateadd(day, 1 - dayofweekiso(ts), cast(ts as date))",  # whatever WEEK_START says
        "bigquery": "date_trunc(cast(ts as date), isoweek)",  # BigQuery's WEEK starts on Sunday
        "spark": "cast(date_trunc('week', ts) as date)",
        "databricks": "cast(date_trunc('week', ts) as date)",
    },
    "type_double": {
        "duckdb": "double",
        "postgres": "double precision",
        "snowflake": "double",
        "bigquery": "float64",
        "spark": "double",
        "databricks": "double",
    },
}

# Which implementation dispatch picks: the adapter's own unless listed here.
FALLBACKS = {
    ("contents_json", "postgres"): "default",
    ("regexp_replace_all", "snowflake"): "default", ("regexp_replace_all", "spark"): "default",
    ("regexp_replace_all", "databricks"): "default",
    ("to_unix_seconds", "postgres"): "default",
    ("percentile", "postgres"): "default", ("percentile", "snowflake"): "default",
    ("hex_prefix_to_int", "spark"): "default", ("hex_prefix_to_int", "databricks"): "default",
    ("type_double", "postgres"): "default",
    ("type_varchar", "duckdb"): "default", ("type_varchar", "postgres"): "default",
    ("type_varchar", "snowflake"): "default", ("type_varchar", "databricks"): "spark",
    ("lower_unicode", "duckdb"): "default", ("lower_unicode", "snowflake"): "default",
    ("lower_unicode", "bigquery"): "default", ("lower_unicode", "spark"): "default",
    ("lower_unicode", "databricks"): "default",
    ("trim_spaces", "postgres"): "default", ("trim_spaces", "snowflake"): "default",
    ("trim_spaces", "bigquery"): "default", ("trim_spaces", "spark"): "default",
    ("trim_spaces", "databricks"): "default",
    ("timestamp_to_utc", "bigquery"): "default", ("timestamp_to_utc", "spark"): "default",
    ("timestamp_to_utc", "databricks"): "default",
    ("iso_week_start", "duckdb"): "default", ("iso_week_start", "postgres"): "default",
    ("iso_week_start", "spark"): "default", ("iso_week_start", "databricks"): "default",
}

# Functions and syntax that belong to one dialect: no other adapter's SQL may contain them.
DIALECT_MARKERS = {
    "convert_to(": {"postgres"}, "::bit(32)": {"postgres"}, " ~ '": {"postgres"},
    "to_hex(": {"bigquery"}, "regexp_contains(": {"bigquery"}, "r'": {"bigquery"}, "int64": {"bigquery"},
    "unix_seconds(": {"bigquery"}, "safe_offset(": {"bigquery"},
    "sha2(": {"snowflake", "spark", "databricks"}, "rlike": {"spark", "databricks"},
    "unix_timestamp(": {"spark", "databricks"}, "conv(": {"spark", "databricks"},
    "regexp_full_match(": {"duckdb"}, "epoch(": {"duckdb"}, "isfinite(": {"duckdb"}, "quantile_cont(": {"duckdb"},
    "'g')": {"duckdb", "postgres"}, "to_number(": {"snowflake"}, "epoch_second": {"snowflake"},
    'collate "': {"postgres"}, "at time zone": {"postgres"}, "convert_timezone(": {"snowflake"},
    "timestamp_ntz": {"snowflake"}, "isoweek": {"bigquery"}, "dayofweekiso(": {"snowflake"},
}


def dispatchers() -> set[str]:
    return {name for name, source in macro_sources().items() if "adapter.dispatch(" in source}


def test_every_public_macro_is_rendered_here():
    public = {name for name in macro_sources() if "__" not in name and not name.startswith("_")}
    assert public == set(CALLS), "add the new macro to CALLS (and EXPECTED when it dispatches)"
    assert dispatchers() == set(EXPECTED), "every dispatched macro needs its SQL per adapter in EXPECTED"


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_dispatched_macros_render_the_expected_sql(renderers, adapter):
    for macro, per_adapter in EXPECTED.items():
        assert renderers[adapter].render(CALLS[macro]) == per_adapter[adapter], (macro, adapter)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_dispatch_picks_the_adapters_own_implementation(adapter):
    for macro in sorted(dispatchers()):
        renderer = Renderer(adapter)
        renderer.render(CALLS[macro])
        picked = dict(renderer.adapter.dispatched)[macro]
        own = FALLBACKS.get((macro, adapter), adapter)
        # databricks reaches spark's SQL either by its own one-line override or by inheritance
        allowed = {f"{own}__{macro}"} | ({f"spark__{macro}"} if own == "databricks" else set())
        assert picked in allowed, (macro, adapter, picked)


def balanced(sql: str) -> bool:
    depth = 0
    for ch in re.sub(r"'(?:[^']|'')*'", "''", sql):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0 and sql.count("'") % 2 == 0


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_every_macro_renders_to_well_formed_sql_of_its_own_dialect(renderers, adapter):
    for macro, call in CALLS.items():
        sql = renderers[adapter].render(call)
        assert sql and balanced(sql), (macro, adapter, sql)
        assert not re.search(r"\{\{|\{%|\bNone\b|Undefined", sql), (macro, adapter, sql)
        foreign = [m for m, owners in DIALECT_MARKERS.items() if m in sql and adapter not in owners]
        assert not foreign, f"{macro} on {adapter} uses another dialect's {foreign}: {sql}"


# The patterns as the identity macros pass them (a Jinja '\\t' is a backslash and a t).
EMAIL_PATTERN = r"[^@ \t\r\n]+@[^@ \t\r\n.]+([.][^@ \t\r\n.]+)+"
TRIM_PATTERN = r"^[ \t\r\n]+|[ \t\r\n]+$"
PHONE_JUNK_PATTERN = r"[ \t\r\n()./-]"


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_composite_macros_are_built_from_the_adapters_primitives(renderers, adapter):
    r = renderers[adapter]
    types = {name: per_adapter[adapter] for name, per_adapter in DBT_TYPES.items()}
    is_hex = r.call("regexp_full_match", "e", "[0-9a-f]{64}")
    assert r.call("is_sha256_hex", "e") == f"coalesce({is_hex}, false)"
    hashed = r.call("hash_identifier", "e")
    assert r.call("sha256_hex", "e") in hashed and is_hex in hashed

    trimmed = r.call("trim_whitespace", "e")
    assert trimmed == f"nullif({r.call('regexp_replace_all', 'e', TRIM_PATTERN, '')}, '')"
    lowered = r.call("lower_unicode", trimmed)
    assert r.call("regexp_full_match", lowered, EMAIL_PATTERN) in r.call("normalize_email", "e")
    assert r.call("phone_compact", "p") == f"lower({r.call('regexp_replace_all', 'p', PHONE_JUNK_PATTERN, '')})"
    phone = r.call("phone_e164", "p", "cc", "tp", "mn", "mx")
    for pattern in ("[+][0-9]+", "00[0-9]+", "[0-9]+"):
        assert r.call("regexp_full_match", "p", pattern) in phone, pattern
    as_text = f"cast(c as {types['type_string']})"
    assert r.call("normalize_external_id", "c") == r.call("lower_unicode", r.call("trim_whitespace", as_text))

    salted_hash = r.call("sha256_hex", f"'{SALT}:' || u")
    assert r.call("experiment_bucket", "u") == f"mod({r.call('hex_prefix_to_int', salted_hash)}, 10000)"
    assert r.call("experiment_cell", "b") == "case when b < 2000 then 'holdout' else 'treatment' end"
    ranked = " ".join(r.render(CALLS["most_specific_rule"]).split())
    assert ("order by case when rules.a = '*' then 0 else 2 end + case when rules.b = '*' then 0 else 1 end desc"
            in ranked)
    assert ("on rules.e = keys.e_key and rules.a in (keys.a_key, '*') and rules.b in (keys.b_key, '*') "
            "where rules.v is not null") in ranked
    assert " ".join(r.call("experiment_geo_unit", "g", "c", "s").split()) == (
        "case when g = 'region' then c || '-' || coalesce(upper(s), '?') else c end")
    assert r.call("round_money", "v") == (
        f"case when abs(v) < 1e15 then cast(round(cast(v as {types['type_numeric']}), 2) as decimal(18, 2)) end")
    assert r.call("tiktok_as_of") == f"cast('{AS_OF}' as {types['type_timestamp']})"


def test_bigquery_regexes_are_raw_strings(renderers):
    """BigQuery: every pattern a raw string r'...', so \\t reaches RE2 as written."""
    for macro in ("normalize_email", "trim_whitespace", "phone_compact", "phone_e164", "is_sha256_hex",
                  "normalize_device_id", "normalize_hashed_text", "normalize_place", "normalize_locale"):
        sql = renderers["bigquery"].render(CALLS[macro])
        patterns = re.findall(r"(regexp_(?:contains|replace)\([^,]+, )(r?)'", sql)
        assert patterns and all(raw == "r" for _, raw in patterns), (macro, sql)


def test_out_of_range_settings_stop_rendering():
    with pytest.raises(CompilationError, match="tiktok_holdout_share"):
        Renderer("snowflake", {"tiktok_holdout_share": 1.5}).render("experiment_cell('b')")


# --- the renderer against dbt itself -------------------------------------------------------

def dbt_compile(target: str, calls: list[str], work: Path) -> list[str]:
    """`dbt compile --inline` of every call at once with the real adapter; no server needed."""
    marker = "/*@@*/"
    inline = marker.join("{{ " + NAMESPACE + "." + call + " }}" for call in calls)
    env = {**dbt_env(work / "compile.duckdb"), "TIKTOK_PG_PORT": "1"}
    proc = subprocess.run(
        [str(VENV_BIN / "dbt"), "compile", "--inline", inline, "--quiet", "--no-populate-cache",
         "--target", target, "--vars", f"{{tiktok_as_of: '{AS_OF}'}}",
         "--target-path", str(work / target / "target"), "--log-path", str(work / target / "logs"),
         "--project-dir", str(PROJECT_ROOT)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return [part.strip() for part in proc.stdout.strip().split(marker)]


@pytest.mark.parametrize("adapter", EXECUTED)
def test_renderer_matches_dbt_compile(renderers, adapter, tmp_path):
    # not_yet_in_this, needs_evaluation and select_needing_evaluation ask is_incremental(), which looks `this` up in the
    # warehouse, source_column_types asks the warehouse for a relation's columns, and the outbox
    # macros look the outbox up in it: they only compile inside a model (the incremental build,
    # staging and timeline tests run them on both engines); outbox_seq asks is_incremental() too,
    # and renders the clock of the run
    in_model_only = ("not_yet_in_this", "needs_evaluation", "select_needing_evaluation", "source_column_types",
                     "outbox_relation", "is_sent", "is_open_conversion", "outbox_seq")
    calls = [call for name, call in CALLS.items() if name not in in_model_only]
    compiled = dbt_compile(adapter, calls, tmp_path)
    assert len(compiled) == len(calls)
    for call, by_dbt in zip(calls, compiled, strict=True):
        assert renderers[adapter].render(call) == by_dbt, call


# --- the rendered SQL executed ---------------------------------------------------------------

def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


EMAILS = ["  Jane.Doe@Example.COM ", "JOSÉ.Núñez@Correo.es", "jane.doe@", "n/a", "\tx@y.co\n", sha("a@b.co").upper()]


def expected_email_hash(raw: str) -> str | None:
    cleaned = raw.strip(" \t\r\n").lower()
    if re.fullmatch(r"[0-9a-f]{64}", cleaned):
        return cleaned
    if re.fullmatch(r"[^@ \t\r\n]+@[^@ \t\r\n.]+([.][^@ \t\r\n.]+)+", cleaned):
        return sha(cleaned)
    return None


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def execution_cases(r: Renderer) -> list[tuple[str, Any]]:
    """(SQL expression, what Python says it must return)."""
    double = r.call("type_double")
    epoch = calendar.timegm((2026, 1, 2, 3, 4, 5))
    cases: list[tuple[str, Any]] = [
        (r.call("sha256_hex", "'abc'"), sha("abc")),
        (r.call("to_unix_seconds", "timestamp '2026-01-02 03:04:05.9'"), epoch),
        (r.call("hex_prefix_to_int", "'ffffffff0'"), 0xFFFFFFFF),
        (r.call("hex_prefix_to_int", "'0000a0ff'"), 0xA0FF),
        (r.call("round_money", f"cast(1234.5678 as {double})"), 1234.57),
        (r.call("experiment_bucket", "'C000042'"), int(sha(f"{SALT}:C000042")[:8], 16) % 10000),
        (r.call("tiktok_event_source_id", "'web'"), DEMO_ENV["TIKTOK_PIXEL_CODE"]),
        (r.call("tiktok_event_source_id", "'offline'"), None),
        (r.call("phone_e164", r.call("phone_compact", "'+44 (0)20 7946-0018'"), "'44'", "'0'", "7", "10"),
         "+442079460018"),
        (r.call("phone_e164", r.call("phone_compact", "'030 123456789'"), "'49'", "'0'", "5", "13"), "+4930123456789"),
    ]
    for value, finite in (("'NaN'", False), ("'Infinity'", False), ("'-Infinity'", False), ("'1.5'", True)):
        cases.append((r.call("is_finite_number", f"cast({value} as {double})"), finite))
    for raw in EMAILS:
        normalized = r.call("normalize_email", literal(raw))
        cases.append((r.call("hash_identifier", f"({normalized})"), expected_email_hash(raw)))
    uuid = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
    cases += [
        (r.call("normalize_device_id", f"' {uuid.upper()} '", "lower"), uuid),
        (r.call("normalize_device_id", f"'{uuid}'", "upper"), uuid.upper()),
        (r.call("normalize_device_id", "'00000000-0000-0000-0000-000000000000'", "upper"), None),
        (r.call("normalize_device_id", "'not-a-uuid'", "upper"), None),
        (r.call("normalize_device_id", literal(sha("x").upper()), "upper"), sha("x")),
        (r.call("normalize_att_status", "' not determined '", "'ios'"), "NOT_DETERMINED"),
        (r.call("normalize_att_status", "'3'", "'ios'"), "AUTHORIZED"),
        (r.call("normalize_att_status", "'maybe'", "'ios'"), None),
        (r.call("normalize_att_status", "'authorized'", "'android'"), "NOT_APPLICABLE"),
        (r.call("hash_identifier", "(" + r.call("normalize_hashed_text", "' Mary\tAnn '") + ")"),
         sha("maryann")),
        (r.call("hash_identifier", "(" + r.call("normalize_hashed_text", literal("ZOË")) + ")"), sha("zoë")),
        (r.call("normalize_hashed_text", "'  '"), None),
        (r.call("normalize_place", literal("New York, N.Y.")), "newyorkny"),
        (r.call("normalize_place", "' - '"), None),
        (r.call("normalize_locale", "' en_US '"), "en-US"),
        (r.call("normalize_locale", "'zh-Hant-TW'"), "zh-Hant-TW"),
        (r.call("normalize_locale", "'english'"), None),
        # a Sunday and a Monday, both in the ISO week of Monday 2026-11-23
        (f"cast({r.call('iso_week_start', 'timestamp ' + literal('2026-11-29 23:59:59'))} as {r.call('type_varchar')})",
         "2026-11-23"),
        (f"cast({r.call('iso_week_start', 'date ' + literal('2026-11-23'))} as {r.call('type_varchar')})",
         "2026-11-23"),
    ]
    return cases


def assert_cases(adapter: str, run: Callable[[str], Any], cases: list[tuple[str, Any]]) -> None:
    for sql, want in cases:
        got = run(sql)
        if isinstance(want, float):
            assert math.isclose(float(got), want), (adapter, sql, got, want)
        else:
            assert got == want, (adapter, sql, got, want)


def test_rendered_duckdb_sql_runs_and_agrees_with_python(renderers):
    with duckdb.connect() as con:
        con.execute("set timezone = 'UTC'")
        assert_cases("duckdb", lambda sql: con.execute(f"select {sql}").fetchone()[0],
                     execution_cases(renderers["duckdb"]))
        values = [float(v) for v in range(1, 101)]
        percentile = renderers["duckdb"].render("percentile('v', 0.9)")
        (got,) = con.execute(f"select {percentile} from unnest(?) as t(v)", [values]).fetchone()
        assert math.isclose(got, 90.1)


def test_rendered_postgres_sql_runs_and_agrees_with_python(renderers, postgres_cluster):
    conn = postgres_cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("set timezone = 'UTC'")

            def run(sql: str) -> Any:
                cur.execute(f"select {sql}")
                return cur.fetchone()[0]

            assert_cases("postgres", run, execution_cases(renderers["postgres"]))
            percentile = renderers["postgres"].render("percentile('v', 0.9)")
            cur.execute(f"select {percentile} from generate_series(1, 100) as t(v)")
            assert math.isclose(cur.fetchone()[0], 90.1)
    finally:
        conn.close()


CONTENT_LINES = [(2, "SKU-2", 'Scarf "Wool"', 1, 9.5), (1, "SKU-1", "Zoë\\Shirt", 3, 20.0), (3, "SKU-3", None, 2, 0.0)]


def contents_rows(adapter: str) -> str:
    return " union all ".join(
        f"select {n} as n, '{i}' as i, {literal(m) if m is not None else 'null'} as m, {q} as q,"
        f" cast({p} as decimal(18, 2)) as p" for n, i, m, q, p in CONTENT_LINES)


def expected_contents() -> list[dict[str, Any]]:
    return [{"content_id": i, **({"content_name": m} if m is not None else {}), "quantity": q, "price": p}
            for _, i, m, q, p in sorted(CONTENT_LINES)]


def test_rendered_contents_json_is_what_the_sender_sends_on_duckdb_and_postgres(renderers, postgres_cluster):
    """The same lines give, through each engine's JSON functions and the sender's parser, the same
    contents (escaping, line order, nulls and decimals included)."""
    with duckdb.connect() as con:
        sql = renderers["duckdb"].render(CALLS["contents_json"])
        (text,) = con.execute(f"select {sql} from ({contents_rows('duckdb')}) as t").fetchone()
    assert parse_contents(text) == expected_contents()
    conn = postgres_cluster.connect()
    try:
        with conn.cursor() as cur:
            sql = renderers["postgres"].render(CALLS["contents_json"])
            cur.execute(f"select {sql} from ({contents_rows('postgres')}) as t")
            (text,) = cur.fetchone()
    finally:
        conn.close()
    assert parse_contents(text) == expected_contents()


# --- time zones: source timestamps become UTC without zone ------------------------------------

# Each adapter's name for a column with a time zone (as get_columns_in_relation reports it), and
# for a naive one.
ZONED_TYPES = {
    "duckdb": ["TIMESTAMP WITH TIME ZONE"], "postgres": ["timestamp with time zone"],
    "snowflake": ["TIMESTAMP_TZ", "TIMESTAMP_LTZ"], "bigquery": ["TIMESTAMP"], "spark": ["timestamp"],
    "databricks": ["timestamp"],
}
NAIVE_TYPES = {
    "duckdb": "TIMESTAMP", "postgres": "timestamp without time zone", "snowflake": "TIMESTAMP_NTZ",
    "bigquery": "DATETIME", "spark": "timestamp_ntz", "databricks": "timestamp_ntz",
}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_source_timestamps_are_converted_by_their_column_type(adapter):
    r = Renderer(adapter)
    r.adapter.columns["src"] = {"zoned": ZONED_TYPES[adapter][0], "naive": NAIVE_TYPES[adapter]}
    plain = f"cast(ts as {DBT_TYPES['type_timestamp'][adapter]})"

    def render(column: str) -> str:
        return r.render(f"source_timestamp_utc(source_column_types('src'), '{column}')")

    for zoned in ZONED_TYPES[adapter]:
        r.adapter.columns["src"]["zoned"] = zoned
        assert render("ZONED") == EXPECTED["timestamp_to_utc"][adapter].replace("ts", "ZONED"), zoned
    assert render("naive") == plain.replace("ts", "naive")
    assert render("missing") == plain.replace("ts", "missing")


# 2026-01-02 03:04:05 in New York (UTC-5) is 08:04:05 UTC; the sessions run in Tokyo (UTC+9)
ZONED_LITERAL = "timestamptz '2026-01-02 03:04:05-05:00'"
UTC_INSTANT = datetime(2026, 1, 2, 8, 4, 5)


def test_duckdb_zoned_timestamp_becomes_the_utc_instant(renderers):
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'Asia/Tokyo'")
        sql = renderers["duckdb"].call("timestamp_to_utc", ZONED_LITERAL, "TIMESTAMP WITH TIME ZONE")
        assert con.execute(f"select {sql}").fetchone()[0] == UTC_INSTANT
        # what a plain cast gives: the session's wall clock
        assert con.execute(f"select cast({ZONED_LITERAL} as timestamp)").fetchone()[0] != UTC_INSTANT


def test_postgres_zoned_timestamp_becomes_the_utc_instant(renderers, postgres_cluster):
    conn = postgres_cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("set timezone = 'Asia/Tokyo'")
            sql = renderers["postgres"].call("timestamp_to_utc", ZONED_LITERAL, "timestamp with time zone")
            cur.execute(f"select {sql}")
            assert cur.fetchone()[0] == UTC_INSTANT
            cur.execute(f"select cast({ZONED_LITERAL} as timestamp)")
            assert cur.fetchone()[0] != UTC_INSTANT
    finally:
        conn.close()


# --- lowercasing: every letter, on every engine --------------------------------------------

# Letters whose lowercase PostgreSQL's lower() misses under the C locale; Python, DuckDB and ICU agree
# on each. (They do not all agree on context-dependent mappings: Greek final sigma, dotted I.)
UNICODE_EMAILS = ["JOSÉ.Núñez@Correo.es", "\tÜSER@EXAMPLE.DE\n", "ÆØÅ.ÇÀÉÈ@Ñandú.COM", "ДМИТРИЙ@ПРИМЕР.РФ"]
UNICODE_IDS = ["  CUSTÖMER-Ä1 ", "ÉLODIE"]


def identity_sql(r: Renderer, email: str, external_id: str) -> str:
    email_hash = r.call("hash_identifier", "(" + r.call("normalize_email", literal(email)) + ")")
    external_hash = r.call("hash_identifier", "(" + r.call("normalize_external_id", literal(external_id)) + ")")
    return f"select {email_hash}, {external_hash}"


def expected_identity(email: str, external_id: str) -> tuple[str | None, str]:
    return expected_email_hash(email), sha(external_id.strip(" \t\r\n").lower())


def test_duckdb_lowercases_like_python(renderers):
    with duckdb.connect() as con:
        for email, external_id in zip(UNICODE_EMAILS, UNICODE_IDS * 2, strict=True):
            got = con.execute(identity_sql(renderers["duckdb"], email, external_id)).fetchone()
            assert got == expected_identity(email, external_id), (email, external_id)


def test_postgres_email_hash_does_not_depend_on_the_database_locale(renderers, postgres_cluster):
    name = "ctype_c"
    admin = postgres_cluster.connect("postgres")
    try:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name}")
            cur.execute(f"create database {name} template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'")
    finally:
        admin.close()
    conn = postgres_cluster.connect(name)
    try:
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_collation where collname = 'und-x-icu'")
            assert cur.fetchone(), "this server has no ICU collations: set tiktok_postgres_lower_collation"
            cur.execute("select lower('É')")
            assert cur.fetchone()[0] == "É"  # the database's own lower() is ASCII only
            for email, external_id in zip(UNICODE_EMAILS, UNICODE_IDS * 2, strict=True):
                cur.execute(identity_sql(renderers["postgres"], email, external_id))
                assert cur.fetchone() == expected_identity(email, external_id), (email, external_id)
    finally:
        conn.close()
