{#- Continuous percentile (0..1) of a numeric expression, as an aggregate. -#}
{% macro percentile(expr, fraction) -%}
    {{ return(adapter.dispatch('percentile', 'tiktok_outbox')(expr, fraction)) }}
{%- endmacro %}

{% macro default__percentile(expr, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expr }})
{%- endmacro %}

{% macro duckdb__percentile(expr, fraction) -%}
    quantile_cont({{ expr }}, {{ fraction }})
{%- endmacro %}

{% macro bigquery__percentile(expr, fraction) -%}
    approx_quantiles({{ expr }}, 1000)[offset({{ (fraction * 1000) | int }})]
{%- endmacro %}

{% macro spark__percentile(expr, fraction) -%}
    percentile({{ expr }}, {{ fraction }})
{%- endmacro %}

{% macro databricks__percentile(expr, fraction) -%}
    {{ tiktok_outbox.spark__percentile(expr, fraction) }}
{%- endmacro %}
