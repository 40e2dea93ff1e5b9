{#- external_id rule: the customer key as text, whitespace trimmed, every letter lowercased
    (lower_unicode). The pixel's identify() call must send the same string (README, "Identity"). -#}
{% macro normalize_external_id(expr) -%}
    {{ tiktok_outbox.lower_unicode(tiktok_outbox.trim_whitespace("cast(" ~ expr ~ " as " ~ dbt.type_string() ~ ")")) }}
{%- endmacro %}
