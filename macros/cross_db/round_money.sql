{#- A money amount rounded to cents as an exact numeric. Engines differ on round() over floating
    point (PostgreSQL has none), so the value is cast first; magnitudes that do not fit a money
    column (1e15 and up: broken scores, not values) become null and are judged invalid upstream. -#}
{% macro round_money(expr) -%}
    case when abs({{ expr }}) < 1e15 then cast(round(cast({{ expr }} as {{ dbt.type_numeric() }}), 2) as decimal(18, 2)) end
{%- endmacro %}
