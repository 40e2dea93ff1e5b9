{#- The outbox is the record of what was handed to the sender: a conversion in it is frozen (never
    re-keyed, re-valued or sent again). Models upstream of the outbox read it to skip frozen
    conversions; a ref() would be a cycle, so the relation comes from the project's graph and is
    looked up in the warehouse (none before the first build, or while dbt only parses). -#}
{% macro outbox_relation() -%}
    {#- unit tests render models without the graph: they see no outbox -#}
    {%- if not execute or graph.get('nodes') is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set nodes = graph.nodes.values()
        | selectattr('resource_type', 'equalto', 'model')
        | selectattr('package_name', 'equalto', 'tiktok_outbox')
        | selectattr('name', 'equalto', 'tiktok_events_outbox')
        | list -%}
    {%- if nodes | length != 1 -%}
        {{ exceptions.raise_compiler_error("tiktok_events_outbox is not in the project's graph") }}
    {%- endif -%}
    {%- set node = nodes[0] -%}
    {{ return(adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}


{#- `conversion_id_expr` is in the outbox (SQL boolean; false before the outbox exists). -#}
{% macro is_sent(conversion_id_expr) -%}
    {%- set outbox = tiktok_outbox.outbox_relation() -%}
    {%- if outbox is none -%}
    false
    {%- else -%}
    exists (select 1 from {{ outbox }} as sent where sent.conversion_id = {{ conversion_id_expr }})
    {%- endif -%}
{%- endmacro %}


{#- The first instant a conversion can still be sent: tiktok_max_event_age_days before the build. -#}
{% macro sendable_since() -%}
    {{ dbt.dateadd('day', -(var('tiktok_max_event_age_days') | int), tiktok_outbox.tiktok_as_of()) }}
{%- endmacro %}


{#- An open conversion is one a build must derive, attribute and evaluate again from the source
    rows as they are now: not in the outbox, and not too old to be sent (or with no time at all,
    which a source fix may still supply). Everything else is settled: frozen in the outbox, or
    excluded for good as event_too_old. README, "Late and corrected data". -#}
{% macro is_open_conversion(conversion_id_expr, converted_at_expr) -%}
    (({{ converted_at_expr }}) is null or ({{ converted_at_expr }}) >= {{ tiktok_outbox.sendable_since() }})
    and not {{ tiktok_outbox.is_sent(conversion_id_expr) }}
{%- endmacro %}
