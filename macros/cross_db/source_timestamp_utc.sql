{#- The column types of a source table as the warehouse reports them (lowercased name -> type),
    looked up once per staging model when it runs; {} while dbt only parses. -#}
{% macro source_column_types(source_relation) -%}
    {%- set types = {} -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(source_relation) -%}
            {%- do types.update({column.name | lower: column.dtype}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(types) }}
{%- endmacro %}


{#- A source timestamp column as UTC without zone (timestamp_to_utc), by its type in
    `column_types` (source_column_types). Staging models read every source timestamp through it.
    A column whose type is not known (parsing, or not found) gets the plain cast. -#}
{% macro source_timestamp_utc(column_types, column_name) -%}
    {{ return(tiktok_outbox.timestamp_to_utc(column_name, column_types.get(column_name | lower))) }}
{%- endmacro %}
