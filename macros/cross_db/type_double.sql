{#- A 64-bit floating point type. (tiktok_outbox.type_double() is single precision on some engines, DuckDB
    among them, which is not enough for money.) -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'tiktok_outbox')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{% macro snowflake__type_double() -%}
    double
{%- endmacro %}

{% macro bigquery__type_double() -%}
    float64
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}

{% macro databricks__type_double() -%}
    double
{%- endmacro %}
