{#- In an incremental build of the current model: `key_expr` is not yet a `key_column` of the
    model's table (an anti join the planner turns into a hash join). Otherwise: true. -#}
{% macro not_yet_in_this(key_column, key_expr) -%}
    {%- if is_incremental() -%}
    not exists (select 1 from {{ this }} as held where held.{{ key_column }} = {{ key_expr }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}
