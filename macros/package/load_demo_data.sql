{#- Whether the demo seeds (seeds/demo) are the first-party tables: var tiktok_load_demo_data
    when set, else only when this project is the root (the demo), never in a project that
    installs it as a package. seeds/demo/_demo__seeds.yml spells the same rule (yml cannot call
    macros). -#}
{% macro load_demo_data() -%}
    {%- set setting = var('tiktok_load_demo_data', none) -%}
    {%- if setting is none -%}
        {{ return(project_name == 'tiktok_outbox') }}
    {%- endif -%}
    {{ return(setting | string | lower in ['true', '1', 'yes']) }}
{%- endmacro %}
