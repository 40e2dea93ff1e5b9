{#- True when the expression is exactly 64 lowercase hex characters. -#}
{% macro is_sha256_hex(expr) -%}
    coalesce({{ tiktok_outbox.regexp_full_match(expr, '[0-9a-f]{64}') }}, false)
{%- endmacro %}
