-- Fails when the values sent for an event in the treatment cell stop varying in a recent week
-- (coefficient of variation below var tiktok_min_value_cv, weeks with 10 or more values).
{{ config(tags=['monitor']) }}
{%- set since = dbt.dateadd('day', -7 - (var('tiktok_monitor_lookback_days') | int), tiktok_outbox.tiktok_as_of()) %}

select
    event,
    conversion_week,
    events_with_value,
    mean_value,
    coefficient_of_variation
from {{ ref('tiktok_value_distribution') }}
where experiment_cell = 'treatment'
    and conversion_week >= cast({{ since }} as date)
    and events_with_value >= 10
    and coalesce(coefficient_of_variation, 0) < {{ var('tiktok_min_value_cv') }}
