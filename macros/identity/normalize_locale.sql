{#- A locale as TikTok's `user.locale` takes it, plain: a BCP 47 tag such as 'en-US' [TikTok's
    wire notes list it as a plain user field]. Trimmed, an underscore read as a hyphen
    ('en_US' -> 'en-US'); anything that is not a language of 2-3 letters followed by subtags of
    2-8 letters or digits is null. -#}
{% macro normalize_locale(expr) -%}
    {%- set cleaned = "replace(" ~ tiktok_outbox.trim_whitespace('cast(' ~ expr ~ ' as ' ~ dbt.type_string() ~ ')') ~ ", '_', '-')" -%}
    case
        when {{ tiktok_outbox.regexp_full_match(cleaned, '[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*') }} then {{ cleaned }}
    end
{%- endmacro %}
