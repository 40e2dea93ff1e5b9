{#- Every value is a TikTok standard event name, or a valid custom one: at most 50 characters of
    letters, digits, '_' and '-', starting with a letter, and not a standard name in another case. -#}
{% test tiktok_event_name(model, column_name) %}
with names as (
    select distinct {{ column_name }} as event_name from {{ model }}
),

standard as (
    select distinct event_name from {{ ref('tiktok_standard_events') }}
)

select names.event_name
from names
left join standard on names.event_name = standard.event_name
where names.event_name is null
   or (
        standard.event_name is null
        and (
            not {{ tiktok_outbox.regexp_full_match('names.event_name', '[A-Za-z][A-Za-z0-9_-]{0,49}') }}
            or lower(names.event_name) in (select lower(event_name) from standard)
        )
   )
{% endtest %}
