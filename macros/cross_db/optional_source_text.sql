{#- A text column the source table may not have (the match keys and device ids added after the
    first release): source_text of the column when the table has it (`column_types`, from
    source_column_types), else a null string, so a table without it still builds. -#}
{% macro optional_source_text(column_types, column_name) -%}
    {%- if column_name | lower in column_types -%}
        {{ tiktok_outbox.source_text(column_name) }}
    {%- else -%}
        cast(null as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}
