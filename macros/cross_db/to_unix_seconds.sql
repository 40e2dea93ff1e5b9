{#- Whole Unix seconds (UTC) of a timestamp, as a bigint. -#}
{% macro to_unix_seconds(ts) -%}
    {{ return(adapter.dispatch('to_unix_seconds', 'tiktok_outbox')(ts)) }}
{%- endmacro %}

{% macro default__to_unix_seconds(ts) -%}
    cast(floor(extract(epoch from {{ ts }})) as bigint)
{%- endmacro %}

{% macro duckdb__to_unix_seconds(ts) -%}
    cast(floor(epoch({{ ts }})) as bigint)
{%- endmacro %}

{% macro snowflake__to_unix_seconds(ts) -%}
    cast(date_part(epoch_second, {{ ts }}) as bigint)
{%- endmacro %}

{% macro bigquery__to_unix_seconds(ts) -%}
    unix_seconds(timestamp({{ ts }}))
{%- endmacro %}

{% macro spark__to_unix_seconds(ts) -%}
    cast(unix_timestamp({{ ts }}) as bigint)
{%- endmacro %}

{% macro databricks__to_unix_seconds(ts) -%}
    {{ tiktok_outbox.spark__to_unix_seconds(ts) }}
{%- endmacro %}
