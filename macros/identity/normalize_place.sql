{#- City, state or country as TikTok's events take them, plain (not hashed) [peer: Segment's TikTok
    Conversions destination, which TikTok maintains]: every character but the ASCII letters and
    digits removed, then lowercased ('New York' -> 'newyork', 'CA' -> 'ca'). The peer's rule also
    drops accented letters ('München' -> 'mnchen'); it is kept so that this project sends what
    TikTok's own destination sends. Empty is null. -#}
{% macro normalize_place(expr) -%}
    nullif(lower({{ tiktok_outbox.regexp_replace_all('cast(' ~ expr ~ ' as ' ~ dbt.type_string() ~ ')', '[^A-Za-z0-9]+', '') }}), '')
{%- endmacro %}
