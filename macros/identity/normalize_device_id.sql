{#- An advertising or vendor id as TikTok's app events take it, plain: IDFA and IDFV in upper case,
    GAID in lower case, trimmed [peer: Segment's TikTok App Events destination, which TikTok
    maintains; README, "Match keys"]. Only a UUID (8-4-4-4-12 hex digits) is an id; the all-zero
    id a device hands out when tracking is off is none (null); a value that already is a SHA-256
    hex digest passes through in lower case (as the peer does); anything else is null.
    `letter_case`: 'upper' or 'lower'. -#}
{% macro normalize_device_id(expr, letter_case) -%}
    {%- if letter_case not in ['upper', 'lower'] -%}
        {{ exceptions.raise_compiler_error("normalize_device_id: letter_case must be 'upper' or 'lower', got '" ~ letter_case ~ "'") }}
    {%- endif -%}
    {%- set cleaned = 'lower(' ~ tiktok_outbox.trim_whitespace('cast(' ~ expr ~ ' as ' ~ dbt.type_string() ~ ')') ~ ')' -%}
    case
        when {{ tiktok_outbox.regexp_full_match(cleaned, '[0-9a-f]{64}') }} then {{ cleaned }}
        when {{ tiktok_outbox.regexp_full_match(cleaned, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}') }}
            and {{ cleaned }} <> '00000000-0000-0000-0000-000000000000'
            then {{ letter_case }}({{ cleaned }})
    end
{%- endmacro %}
