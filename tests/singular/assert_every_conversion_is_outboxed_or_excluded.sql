-- Nothing disappears silently: every conversion is either in the outbox or in the excluded model
-- with a reason, never both, never neither, and never excluded for no known reason.
with candidates as (
    select conversion_id from {{ ref('int_tiktok_events_candidates') }}
),

outbox as (
    select conversion_id from {{ ref('tiktok_events_outbox') }}
),

excluded as (
    select conversion_id, exclusion_reason from {{ ref('tiktok_events_excluded') }}
)

select
    candidates.conversion_id,
    outbox.conversion_id is not null as in_outbox,
    excluded.conversion_id is not null as in_excluded,
    excluded.exclusion_reason
from candidates
left join outbox on candidates.conversion_id = outbox.conversion_id
left join excluded on candidates.conversion_id = excluded.conversion_id
where (outbox.conversion_id is null) = (excluded.conversion_id is null)
   or excluded.exclusion_reason = 'not_appended'
