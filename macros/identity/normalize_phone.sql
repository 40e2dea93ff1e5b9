{#- Phone numbers to E.164 in two steps, so the costly clean-up runs once per row.

    phone_compact(raw): trimmed and lowercased, with spaces, dashes, dots, slashes and
    parentheses removed ('+44 (0)20 7946-0018' -> '+4402079460018').

    phone_e164(compact, calling_code, trunk_prefix, nsn_min_length, nsn_max_length), the last
    four from seed country_calling_codes for the customer's country:
      - 64 hex characters: already hashed upstream, passed through;
      - '+' or '00' then digits: international. If it starts with the customer's calling code
        followed by the trunk prefix (the '(0)' of '+44 (0)20 ...'), the prefix is dropped; if it
        starts with the calling code, the rest must have a national length for that country;
        otherwise 8 to 15 digits;
      - digits only, with a known country: national. The trunk prefix is dropped when the rest has
        a national length; a number of national length gets the calling code; a number that
        already starts with the calling code and then has a national length is kept;
      - anything else (letters, too short or long, national with no country): null. -#}
{% macro phone_compact(expr) -%}
    lower({{ tiktok_outbox.regexp_replace_all(expr, '[ \\t\\r\\n()./-]', '') }})
{%- endmacro %}

{% macro phone_e164(compact, calling_code, trunk_prefix, nsn_min_length, nsn_max_length) -%}
    {%- set cc_len = "length(" ~ calling_code ~ ")" -%}
    {%- set trunk = "nullif(" ~ trunk_prefix ~ ", '')" -%}
    {%- set trunk_len = "length(" ~ trunk ~ ")" -%}
    {%- set intl_plus = "substr(" ~ compact ~ ", 2)" -%}
    {%- set intl_00 = "substr(" ~ compact ~ ", 3)" -%}
    case
        when {{ compact }} is null or {{ compact }} = '' then null
        when {{ tiktok_outbox.is_sha256_hex(compact) }} then {{ compact }}
        when {{ tiktok_outbox.regexp_full_match(compact, '[+][0-9]+') }}
            then {{ tiktok_outbox._phone_international(intl_plus, calling_code, trunk, cc_len, trunk_len, nsn_min_length, nsn_max_length) }}
        when {{ tiktok_outbox.regexp_full_match(compact, '00[0-9]+') }}
            then {{ tiktok_outbox._phone_international(intl_00, calling_code, trunk, cc_len, trunk_len, nsn_min_length, nsn_max_length) }}
        when {{ tiktok_outbox.regexp_full_match(compact, '[0-9]+') }} and {{ calling_code }} is not null then
            case
                when {{ trunk }} is not null
                    and substr({{ compact }}, 1, {{ trunk_len }}) = {{ trunk }}
                    and length({{ compact }}) - {{ trunk_len }} between {{ nsn_min_length }} and {{ nsn_max_length }}
                    then '+' || {{ calling_code }} || substr({{ compact }}, {{ trunk_len }} + 1)
                when length({{ compact }}) between {{ nsn_min_length }} and {{ nsn_max_length }}
                    then '+' || {{ calling_code }} || {{ compact }}
                when substr({{ compact }}, 1, {{ cc_len }}) = {{ calling_code }}
                    and length({{ compact }}) - {{ cc_len }} between {{ nsn_min_length }} and {{ nsn_max_length }}
                    then '+' || {{ compact }}
            end
    end
{%- endmacro %}

{% macro _phone_international(digits, calling_code, trunk, cc_len, trunk_len, nsn_min_length, nsn_max_length) -%}
    case
        when length({{ digits }}) > 15 then null
        when {{ calling_code }} is not null and {{ trunk }} is not null
            and substr({{ digits }}, 1, {{ cc_len }} + {{ trunk_len }}) = {{ calling_code }} || {{ trunk }}
            and length({{ digits }}) - {{ cc_len }} - {{ trunk_len }} between {{ nsn_min_length }} and {{ nsn_max_length }}
            then '+' || {{ calling_code }} || substr({{ digits }}, {{ cc_len }} + {{ trunk_len }} + 1)
        when {{ calling_code }} is not null and substr({{ digits }}, 1, {{ cc_len }}) = {{ calling_code }}
            then case
                when length({{ digits }}) - {{ cc_len }} between {{ nsn_min_length }} and {{ nsn_max_length }}
                    then '+' || {{ digits }}
            end
        when length({{ digits }}) between 8 and 15 then '+' || {{ digits }}
    end
{%- endmacro %}
