-- Fails when an event's match coverage (email, phone or ttclid present) over the recent days is
-- below var tiktok_min_match_coverage (events with at least 20 conversions in the window).
{{ config(tags=['monitor']) }}
{%- set since = dbt.dateadd('day', -(var('tiktok_monitor_lookback_days') | int), tiktok_outbox.tiktok_as_of()) %}

select
    event,
    sum(events) as events,
    sum(match_coverage * events) / sum(events) as match_coverage
from {{ ref('tiktok_match_diagnostics') }}
where conversion_date >= cast({{ since }} as date)
group by event
having sum(events) >= 20
    and sum(match_coverage * events) / sum(events) < {{ var('tiktok_min_match_coverage') }}
