{#- An unbounded string type that is the same on every build of a table. dbt.type_string() is
    `text` on PostgreSQL and DuckDB, where the outbox and the seeds have always been `varchar`, so
    an incremental run would see a type change; Spark, Databricks and BigQuery have no unbounded
    varchar (`DATATYPE_MISSING_SIZE`, `Unknown BigQuery type`) and call it `string`.
    The yml files (seed column_types, the outbox contract) cannot call macros: they spell the same
    choice with `target.type`, and tests/python/test_portable_types.py holds both to agree. -#}
{% macro type_varchar() -%}
    {{ return(adapter.dispatch('type_varchar', 'tiktok_outbox')()) }}
{%- endmacro %}

{% macro default__type_varchar() -%}
    varchar
{%- endmacro %}

{% macro spark__type_varchar() -%}
    string
{%- endmacro %}

{% macro bigquery__type_varchar() -%}
    string
{%- endmacro %}
