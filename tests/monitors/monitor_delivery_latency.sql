-- Fails when, on a recent delivery day, the 90th percentile of conversion-to-delivery time of an
-- event is above var tiktok_latency_goal_hours (late signal loses optimisation value).
{{ config(tags=['monitor']) }}
{%- set since = dbt.dateadd('day', -(var('tiktok_monitor_lookback_days') | int), tiktok_outbox.tiktok_as_of()) %}

select
    delivery_date,
    event,
    events_delivered,
    p90_hours,
    {{ var("tiktok_latency_goal_hours") }} as latency_goal_hours
from {{ ref('tiktok_delivery_latency') }}
where delivery_date >= cast({{ since }} as date)
    and p90_hours > {{ var("tiktok_latency_goal_hours") }}
