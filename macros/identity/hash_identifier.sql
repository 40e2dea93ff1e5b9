{#- SHA-256 (lowercase hex) of a normalised identifier; a value that already is 64 lowercase hex
    characters passes through unchanged, and null stays null. -#}
{% macro hash_identifier(normalized_expr) -%}
    case
        when {{ normalized_expr }} is null then null
        when {{ tiktok_outbox.is_sha256_hex(normalized_expr) }} then {{ normalized_expr }}
        else {{ tiktok_outbox.sha256_hex(normalized_expr) }}
    end
{%- endmacro %}
