{#- The text with its leading and trailing spaces removed: trim() on every engine.
    On DuckDB, trim() copies every string it is given, whether or not it has a space to remove:
    over the 8.7M web sessions of the benchmark (page urls, click ids, cookies, ips) that took 9 s
    more than the 2 s scan. DuckDB's trim() removes the Unicode space separators (category Zs,
    the 17 code points below: not tabs or line breaks), so it is called only for the strings
    that start or end with one, and every other string is passed on as it is: the same result
    (tests/python/test_normalisation_properties.py holds the two equal). -#}
{% macro trim_spaces(expr) -%}
    {{ return(adapter.dispatch('trim_spaces', 'tiktok_outbox')(expr)) }}
{%- endmacro %}

{% macro default__trim_spaces(expr) -%}
    trim({{ expr }})
{%- endmacro %}

{% macro duckdb__trim_spaces(expr) -%}
    {#- contains() of the first and last character (an IN list of 17 would be planned as a join,
        which no projection removes: every query of a staging view would pay for it) -#}
    {%- set spaces -%}
        {%- for code in [32, 160, 5760, 8192, 8193, 8194, 8195, 8196, 8197, 8198, 8199, 8200, 8201, 8202,
                         8239, 8287, 12288] %}chr({{ code }}){% if not loop.last %} || {% endif %}{% endfor -%}
    {%- endset -%}
    (case when contains({{ spaces }}, ({{ expr }})[1]) or contains({{ spaces }}, ({{ expr }})[-1])
        then trim({{ expr }}) else ({{ expr }}) end)
{%- endmacro %}


{#- A source's text column as staged: a string, edge spaces removed, blank as null. -#}
{% macro source_text(column) -%}
    nullif({{ tiktok_outbox.trim_spaces('cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ ')') }}, '')
{%- endmacro %}
