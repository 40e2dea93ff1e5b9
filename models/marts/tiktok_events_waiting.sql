{#- Conversions that wait for a record of their own before they go out (settle before send): neither
    in the outbox nor excluded. Each goes out at the first build after its record arrives, or at
    the first build at or after settles_at with what has arrived by then. A view over the
    candidates and the outbox, like tiktok_events_excluded; carries no raw or hashed identifiers. -#}

{{ config(materialized='view') }}

with candidates as (
    select * from {{ ref('int_tiktok_events_candidates') }}
    where wait_reason is not null
),

outbox as (
    select conversion_id from {{ ref('tiktok_events_outbox') }}
),

final as (
    select
        candidates.conversion_id,
        candidates.event_id,
        candidates.event,
        candidates.event_source,
        candidates.canonical_event,
        candidates.business_model,
        candidates.converted_at,
        candidates.experiment_cell,
        candidates.wait_reason,
        candidates.settles_at,
        candidates.evaluated_at
    from candidates
    left join outbox
        on candidates.conversion_id = outbox.conversion_id
    where outbox.conversion_id is null
)

select * from final
