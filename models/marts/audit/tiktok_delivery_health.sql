{#- Delivery health per day and run: events handled, their outcomes, the success rate and the
    most frequent error. Grain: (delivery_date, run_id); a run that crosses midnight has a row per
    day. Production receipts only. -#}

with runs as (
    select * from {{ ref('stg_tiktok_delivery__runs') }}
),

events as (
    -- an event that was never sent (expired, rejected before sending) counts on its run's day
    select
        events.*,
        cast({{ dbt.date_trunc('day', 'coalesce(events.first_sent_at, runs.started_at)') }} as date) as delivery_date
    from {{ ref('int_delivery_events_by_run') }} as events
    left join runs
        on events.run_id = runs.run_id
),

counts as (
    select
        delivery_date,
        run_id,
        count(*) as events,
        sum(case when attempts > 0 then 1 else 0 end) as events_sent,
        sum(case when status = 'delivered' then 1 else 0 end) as delivered,
        sum(case when status = 'rejected' then 1 else 0 end) as rejected,
        sum(case when status = 'failed' then 1 else 0 end) as failed,
        sum(case when status = 'expired' then 1 else 0 end) as expired,
        sum(attempts) as attempts
    from events
    group by delivery_date, run_id
),

errors as (
    select
        delivery_date,
        run_id,
        error_code,
        error_message,
        events_with_error
    from (
        select
            delivery_date,
            run_id,
            error_code,
            min(error_message) as error_message,
            count(*) as events_with_error,
            row_number() over (
                partition by delivery_date, run_id order by count(*) desc, error_code asc nulls last
            ) as error_rank
        from events
        where status <> 'delivered'
        group by delivery_date, run_id, error_code
    ) as ranked
    where error_rank = 1
),

final as (
    select
        counts.delivery_date,
        counts.run_id,
        runs.outcome as run_outcome,
        runs.started_at as run_started_at,
        counts.events,
        counts.events_sent,
        counts.delivered,
        counts.rejected,
        counts.failed,
        counts.expired,
        counts.attempts,
        cast(counts.delivered as {{ tiktok_outbox.type_double() }})
        / nullif(counts.delivered + counts.rejected + counts.failed, 0) as success_rate,
        errors.error_code as top_error_code,
        errors.error_message as top_error_message,
        errors.events_with_error as top_error_events
    from counts
    left join runs
        on counts.run_id = runs.run_id
    left join errors
        on counts.delivery_date = errors.delivery_date
            and counts.run_id = errors.run_id
)

select * from final
