-- A model of the installing project over the package's public outbox: refs across the package
-- boundary resolve, and the outbox's access (public) allows them.
with outbox as (
    select * from {{ ref('tiktok_outbox', 'tiktok_events_outbox') }}
),

final as (
    select
        event_source,
        event,
        count(*) as events
    from outbox
    group by event_source, event
)

select * from final
