{#- Time from the conversion (event_time) to its acknowledged delivery, per delivery day and
    event: p50/p90/p99 in hours and the share within var tiktok_latency_goal_hours. Late signal
    loses optimisation value. Each event counts once, at its first delivery. -#}
{%- set goal = var('tiktok_latency_goal_hours') | float -%}

with delivered as (
    select
        event_source_id,
        event,
        event_id,
        min(delivered_at) as delivered_at,
        min(event_time) as event_time
    from {{ ref('int_delivery_events_by_run') }}
    where status = 'delivered'
    group by event_source_id, event, event_id
),

latencies as (
    select
        cast({{ dbt.date_trunc('day', 'delivered_at') }} as date) as delivery_date,
        event,
        cast({{ tiktok_outbox.to_unix_seconds('delivered_at') }} - event_time as {{ tiktok_outbox.type_double() }})
        / 3600.0 as latency_hours
    from delivered
),

final as (
    select
        delivery_date,
        event,
        count(*) as events_delivered,
        {{ tiktok_outbox.percentile('latency_hours', 0.5) }} as p50_hours,
        {{ tiktok_outbox.percentile('latency_hours', 0.9) }} as p90_hours,
        {{ tiktok_outbox.percentile('latency_hours', 0.99) }} as p99_hours,
        max(latency_hours) as max_hours,
        avg(case when latency_hours <= {{ goal }} then 1.0 else 0.0 end) as share_within_goal,
        {{ goal }} as latency_goal_hours,
        {{ tiktok_outbox.percentile('latency_hours', 0.9) }} <= {{ goal }} as is_p90_within_goal
    from latencies
    group by delivery_date, event
)

select * from final
