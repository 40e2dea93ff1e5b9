{#- True for a number that is neither null, NaN nor infinite. -#}
{% macro is_finite_number(expr) -%}
    {{ return(adapter.dispatch('is_finite_number', 'tiktok_outbox')(expr)) }}
{%- endmacro %}

{% macro default__is_finite_number(expr) -%}
    ({{ expr }} is not null and {{ expr }} = {{ expr }} and abs({{ expr }}) < 1e300)
{%- endmacro %}

{% macro duckdb__is_finite_number(expr) -%}
    coalesce(isfinite({{ expr }}), false)
{%- endmacro %}

{% macro postgres__is_finite_number(expr) -%}
    ({{ expr }} is not null and {{ expr }} not in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8))
{%- endmacro %}

{% macro snowflake__is_finite_number(expr) -%}
    ({{ expr }} is not null and {{ expr }} not in ('NaN'::float, 'inf'::float, '-inf'::float))
{%- endmacro %}

{% macro bigquery__is_finite_number(expr) -%}
    ({{ expr }} is not null and not is_nan({{ expr }}) and not is_inf({{ expr }}))
{%- endmacro %}

{% macro spark__is_finite_number(expr) -%}
    ({{ expr }} is not null and not isnan({{ expr }}) and abs({{ expr }}) != double('infinity'))
{%- endmacro %}

{% macro databricks__is_finite_number(expr) -%}
    {{ tiktok_outbox.spark__is_finite_number(expr) }}
{%- endmacro %}
