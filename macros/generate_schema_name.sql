{#- A configured schema is used as written (the demo seeds land exactly in
    var('tiktok_source_schema'), where the sources look); everything else uses the target's. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
