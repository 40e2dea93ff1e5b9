{#- First name, last name or zip code before hashing [peer: Segment's TikTok Conversions
    destination, which TikTok maintains]: every space, tab and line break removed, every letter
    lowercased (lower_unicode, so 'Zoë' -> 'zoë'); empty is null. A value that already is a
    SHA-256 hex digest stays one (hash_identifier passes it through). -#}
{% macro normalize_hashed_text(expr) -%}
    nullif({{ tiktok_outbox.lower_unicode(tiktok_outbox.regexp_replace_all('cast(' ~ expr ~ ' as ' ~ dbt.type_string() ~ ')', '[ \\t\\r\\n]+', '')) }}, '')
{%- endmacro %}
