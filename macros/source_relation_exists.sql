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


{#- The body of the `source` CTE of a staging model over an optional table: every row of
    `source_relation` where the table exists, else no row, with `columns` ((name, SQL type) pairs),
    so that the model builds and its readers see an empty table. -#}
{% macro optional_source(source_relation, columns) -%}
    {%- if tiktok_outbox.source_relation_exists(source_relation) -%}
    select * from {{ source_relation }}
    {%- else -%}
    select
        {%- for name, type in columns %}
        cast(null as {{ type }}) as {{ name }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from (select 1 as one) as no_table
    where 1 = 0
    {%- endif -%}
{%- endmacro %}
