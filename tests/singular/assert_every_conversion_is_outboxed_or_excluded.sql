-- Nothing disappears silently: every conversion is in exactly one of the outbox, the waiting
-- conversions (tiktok_events_waiting: a wait_reason and not in the outbox) and the excluded ones
-- (with a known reason).
with candidates as (
    select
        conversion_id,
        wait_reason
    from {{ ref('int_tiktok_events_candidates') }}
),

outbox as (
    select conversion_id from {{ ref('tiktok_events_outbox') }}
),

excluded as (
    select
        conversion_id,
        exclusion_reason
    from {{ ref('tiktok_events_excluded') }}
)

select
    candidates.conversion_id,
    outbox.conversion_id is not null as in_outbox,
    outbox.conversion_id is null and candidates.wait_reason is not null as is_waiting,
    excluded.conversion_id is not null as in_excluded,
    excluded.exclusion_reason
from candidates
left join outbox on candidates.conversion_id = outbox.conversion_id
left join excluded on candidates.conversion_id = excluded.conversion_id
where (case when outbox.conversion_id is null then 0 else 1 end)
    + (case when outbox.conversion_id is null and candidates.wait_reason is not null then 1 else 0 end)
    + (case when excluded.conversion_id is null then 0 else 1 end) <> 1
    or excluded.exclusion_reason = 'not_appended'
