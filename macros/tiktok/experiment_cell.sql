{#- Deterministic experiment cell of a unit (a customer key or a country):
    bucket = first 8 hex digits of sha256(salt || ':' || unit) as an integer, mod 10000;
    bucket < holdout_share * 10000 -> 'holdout', else 'treatment'. Same salt, same cells on every
    rebuild and every warehouse; change the salt to draw a new experiment. -#}
{% macro experiment_bucket(unit_expr) -%}
    mod({{ tiktok_outbox.hex_prefix_to_int(tiktok_outbox.sha256_hex("'" ~ (var('tiktok_experiment_salt') | string | replace("'", "''")) ~ ":' || " ~ unit_expr)) }}, 10000)
{%- endmacro %}

{% macro experiment_cell(bucket_expr) -%}
    {%- set share = var('tiktok_holdout_share') | float -%}
    {%- if share < 0 or share > 1 -%}
        {{ exceptions.raise_compiler_error("var tiktok_holdout_share must be between 0 and 1, got " ~ share) }}
    {%- endif -%}
    case when {{ bucket_expr }} < {{ (share * 10000) | round | int }} then 'holdout' else 'treatment' end
{%- endmacro %}

{#- The geo unit of a customer in a registered geo experiment (source experiments): the country,
    or with geo_level 'region' the country and state ('US-CA'; '?' without a state). One
    definition for the cells, the cohorts and the outbox's assignments, which must agree. -#}
{% macro experiment_geo_unit(geo_level_expr, country_expr, state_expr) -%}
    case when {{ geo_level_expr }} = 'region'
        then {{ country_expr }} || '-' || coalesce(upper({{ state_expr }}), '?')
        else {{ country_expr }}
    end
{%- endmacro %}
