{#- A source timestamp as the project's timestamp type, UTC without zone. `source_type` is the
    column's type in the warehouse (source_timestamp_utc looks it up): a type with a time zone
    (timestamptz, TIMESTAMP WITH TIME ZONE, Snowflake's TIMESTAMP_TZ / TIMESTAMP_LTZ) is converted
    to the UTC instant, whatever the session's time zone; a naive timestamp is taken as UTC
    already and only cast. BigQuery's TIMESTAMP is an instant and its cast reads a DATETIME as
    UTC; Spark's timestamp is an instant too (shown in the session time zone, UTC on Databricks by
    default): both use the plain cast. -#}
{% macro timestamp_to_utc(expr, source_type) -%}
    {{ return(adapter.dispatch('timestamp_to_utc', 'tiktok_outbox')(expr, source_type)) }}
{%- endmacro %}

{% macro default__timestamp_to_utc(expr, source_type) -%}
    cast({{ expr }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro duckdb__timestamp_to_utc(expr, source_type) -%}
    {%- if tiktok_outbox._is_zoned_timestamp(source_type) -%}
        timezone('UTC', {{ expr }})
    {%- else -%}
        cast({{ expr }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{% macro postgres__timestamp_to_utc(expr, source_type) -%}
    {%- if tiktok_outbox._is_zoned_timestamp(source_type) -%}
        ({{ expr }} at time zone 'UTC')
    {%- else -%}
        cast({{ expr }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{% macro snowflake__timestamp_to_utc(expr, source_type) -%}
    {%- if tiktok_outbox._is_zoned_timestamp(source_type) -%}
        cast(convert_timezone('UTC', {{ expr }}) as timestamp_ntz)
    {%- else -%}
        cast({{ expr }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{#- True for a column type that carries a time zone or an instant shown in the session's zone. -#}
{% macro _is_zoned_timestamp(source_type) -%}
    {%- set t = (source_type or '') | lower | trim -%}
    {{ return(t.startswith('timestamptz') or t.startswith('timestamp_tz') or t.startswith('timestamp_ltz')
              or ('with time zone' in t and 'without' not in t) or 'with local time zone' in t) }}
{%- endmacro %}
