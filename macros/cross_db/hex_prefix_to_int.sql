{#- The integer value of the first 8 hex digits of a lowercase hex string (0 .. 4294967295). -#}
{% macro hex_prefix_to_int(hex_expr) -%}
    {{ return(adapter.dispatch('hex_prefix_to_int', 'tiktok_outbox')(hex_expr)) }}
{%- endmacro %}

{% macro default__hex_prefix_to_int(hex_expr) -%}
    cast(conv(substr({{ hex_expr }}, 1, 8), 16, 10) as bigint)
{%- endmacro %}

{% macro duckdb__hex_prefix_to_int(hex_expr) -%}
    cast(('0x' || substr({{ hex_expr }}, 1, 8)) as bigint)
{%- endmacro %}

{% macro postgres__hex_prefix_to_int(hex_expr) -%}
    ('x' || substr({{ hex_expr }}, 1, 8))::bit(32)::bigint
{%- endmacro %}

{% macro snowflake__hex_prefix_to_int(hex_expr) -%}
    to_number(substr({{ hex_expr }}, 1, 8), 'XXXXXXXX')
{%- endmacro %}

{% macro bigquery__hex_prefix_to_int(hex_expr) -%}
    cast(concat('0x', substr({{ hex_expr }}, 1, 8)) as int64)
{%- endmacro %}
