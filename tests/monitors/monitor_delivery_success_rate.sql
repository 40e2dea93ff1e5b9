-- Fails when a recent day's delivery success rate (delivered / (delivered + rejected + failed))
-- is below var tiktok_min_success_rate. Gate CI with `dbt build --select tag:monitor`.
{{ config(tags=['monitor']) }}
{%- set since = dbt.dateadd('day', -(var('tiktok_monitor_lookback_days') | int), tiktok_outbox.tiktok_as_of()) %}

select
    delivery_date,
    run_id,
    success_rate,
    top_error_code,
    top_error_message
from {{ ref('tiktok_delivery_health') }}
where delivery_date >= cast({{ since }} as date)
    and success_rate < {{ var('tiktok_min_success_rate') }}
