{#- One row per production event per `sender push` run: the event's outcome in that run (its best
    receipt: delivered > rejected > expired > failed), attempts, first send and acknowledgement,
    and the error of its last unsuccessful receipt. Test-event receipts are left out, and so are
    those of outbox rows with a null key (no event: `sender status` counts them). -#}

with receipts as (
    select * from {{ ref('stg_tiktok_delivery__receipts') }}
    where not is_test_event
        and row_fingerprint is null  -- an outbox row with a null key is no event
),

ranked as (
    select
        receipts.*,
        case status when 'delivered' then 1 when 'rejected' then 2 when 'expired' then 3 else 4 end as status_rank
    from receipts
),

per_event as (
    select
        run_id,
        event_source_id,
        event,
        event_id,
        min(event_time) as event_time,
        min(status_rank) as best_status_rank,
        count(attempt) as attempts,
        min(sent_at) as first_sent_at,
        min(case when status = 'delivered' then acknowledged_at end) as delivered_at
    from ranked
    group by run_id, event_source_id, event, event_id
),

last_problem as (
    select
        run_id,
        event_source_id,
        event,
        event_id,
        api_code,
        api_message
    from (
        select
            ranked.*,
            row_number() over (
                partition by run_id, event_source_id, event, event_id
                order by sent_at desc nulls last, receipt_id desc nulls last
            ) as row_rank
        from ranked
        where status <> 'delivered'
    ) as problems
    where row_rank = 1
),

final as (
    select
        per_event.run_id,
        per_event.event_source_id,
        per_event.event,
        per_event.event_id,
        per_event.event_time,
        case per_event.best_status_rank
            when 1 then 'delivered' when 2 then 'rejected' when 3 then 'expired' else 'failed'
        end as status,
        per_event.attempts,
        per_event.first_sent_at,
        per_event.delivered_at,
        case when per_event.best_status_rank > 1 then last_problem.api_code end as error_code,
        case when per_event.best_status_rank > 1 then last_problem.api_message end as error_message
    from per_event
    left join last_problem
        on per_event.run_id = last_problem.run_id
            and per_event.event_source_id = last_problem.event_source_id
            and per_event.event = last_problem.event
            and per_event.event_id = last_problem.event_id
)

select * from final
