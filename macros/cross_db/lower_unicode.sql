{#- Lowercase every letter, not only ASCII ones, whatever the database's locale. PostgreSQL's
    lower() follows the database's LC_CTYPE (under the C locale it lowercases ASCII only), so it
    lowercases with the ICU root collation, var tiktok_postgres_lower_collation (default
    'und-x-icu', present when the server is built with ICU, as Debian's and the official images
    are; null to use the database's own). The other engines' lower() is Unicode-aware already. -#}
{% macro lower_unicode(expr) -%}
    {{ return(adapter.dispatch('lower_unicode', 'tiktok_outbox')(expr)) }}
{%- endmacro %}

{% macro default__lower_unicode(expr) -%}
    lower({{ expr }})
{%- endmacro %}

{% macro postgres__lower_unicode(expr) -%}
    {%- set collation = var('tiktok_postgres_lower_collation', 'und-x-icu') -%}
    {%- if collation -%}
        lower({{ expr }} collate "{{ collation }}")
    {%- else -%}
        lower({{ expr }})
    {%- endif -%}
{%- endmacro %}
