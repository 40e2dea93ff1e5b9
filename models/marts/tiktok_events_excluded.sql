{#- Every conversion that is not in the outbox and not waiting (tiktok_events_waiting), with the
    reason it is not sent: nothing disappears silently. A view over the candidates and the outbox, so it always agrees with both and costs
    nothing to build (an exclusion can be fixed at the source; the candidates re-evaluate open
    exclusions on every build; the outbox itself never changes). Carries no raw or hashed
    identifiers. -#}

{{ config(materialized='view') }}

with candidates as (
    select * from {{ ref('int_tiktok_events_candidates') }}
),

outbox as (
    select
        conversion_id,
        event_source_id,
        event,
        event_id
    from {{ ref('tiktok_events_outbox') }}
),

not_in_outbox as (
    select candidates.*
    from candidates
    left join outbox as by_conversion
        on candidates.conversion_id = by_conversion.conversion_id
    where by_conversion.conversion_id is null
        and candidates.wait_reason is null
),

final as (
    select
        not_in_outbox.conversion_id,
        not_in_outbox.event_id,
        not_in_outbox.event,
        not_in_outbox.event_source,
        not_in_outbox.canonical_event,
        not_in_outbox.business_model,
        not_in_outbox.converted_at,
        not_in_outbox.experiment_cell,
        not_in_outbox.value_basis,
        not_in_outbox.value,
        case
            when not_in_outbox.exclusion_reason is not null then not_in_outbox.exclusion_reason
            when by_event_key.event_id is not null then 'duplicate_event_id'
            -- ready once, its append stopped by a gate, and too old to send by now
            when not_in_outbox.converted_at < {{ tiktok_outbox.sendable_since() }} then 'event_too_old'
            else 'not_appended'
        end as exclusion_reason,
        not_in_outbox.evaluated_at
    from not_in_outbox
    left join outbox as by_event_key
        on not_in_outbox.event_source_id = by_event_key.event_source_id
            and not_in_outbox.event = by_event_key.event
            and not_in_outbox.event_id = by_event_key.event_id
)

select * from final
