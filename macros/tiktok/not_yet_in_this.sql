{#- In an incremental build of the current model: `key_expr` is not yet a `key_column` of the
    model's table (an anti join the planner turns into a hash join). Otherwise: true. -#}
{% macro not_yet_in_this(key_column, key_expr) -%}
    {%- if is_incremental() -%}
    not exists (select 1 from {{ this }} as held where held.{{ key_column }} = {{ key_expr }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}


{#- In an incremental build: the conversion is new to this model or still open (macro
    is_open_conversion), so the build derives it again from the source rows as they are now.
    Otherwise (first build, full refresh): true. -#}
{% macro needs_evaluation(conversion_id_expr, converted_at_expr) -%}
    {%- if is_incremental() -%}
    ({{ tiktok_outbox.not_yet_in_this('conversion_id', conversion_id_expr) }}
     or ({{ tiktok_outbox.is_open_conversion(conversion_id_expr, converted_at_expr) }}))
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}
