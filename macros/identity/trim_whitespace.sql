{#- Strip leading and trailing spaces, tabs and line breaks; an empty result becomes null. -#}
{% macro trim_whitespace(expr) -%}
    nullif({{ tiktok_outbox.regexp_replace_all(expr, '^[ \\t\\r\\n]+|[ \\t\\r\\n]+$', '') }}, '')
{%- endmacro %}
