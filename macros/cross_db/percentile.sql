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

{#- BigQuery's percentile_cont is an analytic function only and approx_quantiles does not
    interpolate (1/1000 steps: a median of 99 and 300 is 300, not 199.5), so the continuous
    percentile is computed from the sorted values: the two around position fraction * (n - 1),
    weighted by the distance to each. Exact, like percentile_cont; holds a group's values in one
    array (BigQuery's 100 MB row limit: tens of millions of numbers). -#}
{% macro bigquery__percentile(expr, fraction) -%}
    {%- set position = "(" ~ fraction ~ " * (count(" ~ expr ~ ") - 1))" -%}
    {%- set sorted = "array_agg(" ~ expr ~ " ignore nulls order by " ~ expr ~ ")" -%}
    ({{ sorted }}[safe_offset(cast(floor({{ position }}) as int64))] * (1 - ({{ position }} - floor({{ position }})))
     + {{ sorted }}[safe_offset(cast(ceil({{ position }}) as int64))] * ({{ position }} - floor({{ position }})))
{%- endmacro %}

{% macro spark__percentile(expr, fraction) -%}
    percentile({{ expr }}, {{ fraction }})
{%- endmacro %}

{% macro databricks__percentile(expr, fraction) -%}
    {{ tiktok_outbox.spark__percentile(expr, fraction) }}
{%- endmacro %}
