{#- Email match key before hashing: whitespace trimmed, every letter lowercased (lower_unicode); a
    value that is not something@domain.tld becomes null. A value that already is 64 hex
    characters is taken as a SHA-256 computed upstream and passed through (lowercased). -#}
{% macro normalize_email(expr) -%}
    {%- set cleaned = tiktok_outbox.lower_unicode(tiktok_outbox.trim_whitespace(expr)) -%}
    case
        when {{ tiktok_outbox.is_sha256_hex(cleaned) }} then {{ cleaned }}
        when {{ tiktok_outbox.regexp_full_match(cleaned, '[^@ \\t\\r\\n]+@[^@ \\t\\r\\n.]+([.][^@ \\t\\r\\n.]+)+') }} then {{ cleaned }}
    end
{%- endmacro %}
