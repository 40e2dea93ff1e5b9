{#- Where each node's schema is: dbt installs this macro for this project's nodes wherever the
    project runs, as the root or as a package, so it decides both cases.

    Installed as a package (the root project is another): the installing project's naming, its
    own generate_schema_name when it has one, else dbt's default; so the package's schemas follow
    the user's dev/prod conventions like their own models' (README, "Installing it as a package").

    As the root (the demo): dbt's default (a custom schema is `<target schema>_<custom>`, so dev
    and prod targets never write into each other's), except for the demo seeds (seeds/demo): they
    are the first-party tables, and land exactly where the sources read them,
    var('tiktok_source_schema'), like real first-party data that no target owns. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set root_naming = (context.get(project_name) or {}).get('generate_schema_name') -%}
    {%- if project_name != 'tiktok_outbox' and root_naming is not none -%}
        {{ root_naming(custom_schema_name, node) | trim }}
    {%- elif project_name == 'tiktok_outbox'
            and custom_schema_name is not none
            and node.resource_type == 'seed'
            and node.original_file_path.startswith('seeds/demo/') -%}
        {{ custom_schema_name | trim }}
    {%- else -%}
        {{ default__generate_schema_name(custom_schema_name, node) | trim }}
    {%- endif -%}
{%- endmacro %}
