{#- The instant a build treats as "now": var tiktok_as_of when set (tests pin it), otherwise the
    start of the dbt invocation, so every model of one build agrees. UTC, timestamp without zone. -#}
{% macro tiktok_as_of() -%}
    {%- set as_of = var('tiktok_as_of', none) -%}
    {%- if as_of -%}
        cast('{{ as_of }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}
