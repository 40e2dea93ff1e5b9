{#- A source timestamp as the project's timestamp type, UTC without zone. `source_type` is the
    column's type in the warehouse (source_column_types looks it up): a type with a time zone
    (timestamptz, TIMESTAMP WITH TIME ZONE, Snowflake's TIMESTAMP_TZ / TIMESTAMP_LTZ) is converted
    to the UTC instant by the adapter's implementation, whatever the session's time zone; a naive
    timestamp is taken as UTC already and only cast. BigQuery's TIMESTAMP is an instant and its
    cast reads a DATETIME as UTC; Spark's timestamp is an instant too (shown in the session time
    zone, UTC on Databricks by default): both use the plain cast (the default). -#}
{% macro timestamp_to_utc(expr, source_type) -%}
    {%- if not tiktok_outbox._is_zoned_timestamp(source_type) -%}
        {{ return(tiktok_outbox.default__timestamp_to_utc(expr)) }}
    {%- endif -%}
    {{ return(adapter.dispatch('timestamp_to_utc', 'tiktok_outbox')(expr)) }}
{%- endmacro %}

{% macro default__timestamp_to_utc(expr) -%}
    cast({{ expr }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro duckdb__timestamp_to_utc(expr) -%}
    timezone('UTC', {{ expr }})
{%- endmacro %}

{% macro postgres__timestamp_to_utc(expr) -%}
    ({{ expr }} at time zone 'UTC')
{%- endmacro %}

{% macro snowflake__timestamp_to_utc(expr) -%}
    cast(convert_timezone('UTC', {{ expr }}) as timestamp_ntz)
{%- endmacro %}

{#- True for a column type that carries a time zone or an instant shown in the session's zone. -#}
{% macro _is_zoned_timestamp(source_type) -%}
    {%- set t = (source_type or '') | lower | trim -%}
    {{ return(t.startswith('timestamptz') or t.startswith('timestamp_tz') or t.startswith('timestamp_ltz')
              or ('with time zone' in t and 'without' not in t) or 'with local time zone' in t) }}
{%- endmacro %}
