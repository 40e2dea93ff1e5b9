-- The package built an outbox from its demo data in this project's schemas.
select 1 as no_events
where not exists (select 1 from {{ ref('tiktok_outbox', 'tiktok_events_outbox') }})
