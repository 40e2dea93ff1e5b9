{#- A source table's timestamp column as UTC without zone (timestamp_to_utc), by the column's type
    in the warehouse, looked up when the model runs. Staging models read every source timestamp
    through it. Before execution (parsing), or when the column is not found, the plain cast. -#}
{% macro source_timestamp_utc(source_relation, column_name) -%}
    {%- set found = namespace(data_type=none) -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(source_relation) -%}
            {%- if column.name | lower == column_name | lower -%}
                {%- set found.data_type = column.dtype -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(tiktok_outbox.timestamp_to_utc(column_name, found.data_type)) }}
{%- endmacro %}
