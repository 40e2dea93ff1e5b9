{#- True when a source's table exists in the warehouse. The delivery tables only exist after the
    first `sender push`; models over them select nothing until then instead of failing. In a unit
    test the source is the test's fixture (a CTE), which exists. -#}
{% macro source_relation_exists(source_relation) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if source_relation.type == 'cte' -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set found = adapter.get_relation(
        database=source_relation.database,
        schema=source_relation.schema,
        identifier=source_relation.identifier) -%}
    {{ return(found is not none) }}
{%- endmacro %}
