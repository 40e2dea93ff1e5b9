{#- The Monday of the ISO week of a date or timestamp, as a date. dbt.date_trunc('week') is not
    that everywhere: BigQuery's WEEK starts on Sunday, and Snowflake's follows the session's
    WEEK_START parameter. -#}
{% macro iso_week_start(expr) -%}
    {{ return(adapter.dispatch('iso_week_start', 'tiktok_outbox')(expr)) }}
{%- endmacro %}

{#- DuckDB, PostgreSQL, Spark and Databricks truncate to the Monday. -#}
{% macro default__iso_week_start(expr) -%}
    cast(date_trunc('week', {{ expr }}) as date)
{%- endmacro %}

{% macro snowflake__iso_week_start(expr) -%}
    dateadd(day, 1 - dayofweekiso({{ expr }}), cast({{ expr }} as date))
{%- endmacro %}

{% macro bigquery__iso_week_start(expr) -%}
    date_trunc(cast({{ expr }} as date), isoweek)
{%- endmacro %}
