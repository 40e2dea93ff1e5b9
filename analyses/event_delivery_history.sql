-- The delivery history of one event, the query to run when TikTok, an advertiser or a monitor
-- asks "was this conversion sent, when, and what did TikTok answer?":
--
--   dbt compile --select analyses/event_delivery_history.sql --vars '{tiktok_audit_event_id: purchase-ORD-100234}'
--
-- then run target/compiled/tiktok_outbox/analyses/event_delivery_history.sql in the warehouse.
-- One row per receipt (every attempt of every `sender push` run, test events included, marked),
-- beside the outbox row it was sent from and the run that sent it; an event that is in the
-- outbox but was never sent has one row with no receipt. The receipts and runs are read as the
-- sender wrote them (the tiktok_delivery source), so the history is there before any audit build.
-- Without the var (a plain `dbt compile`) it selects nothing.
{%- set event_id = var('tiktok_audit_event_id') or '' %}

with outbox as (
    select * from {{ ref('tiktok_events_outbox') }}
    where event_id = '{{ event_id | replace("'", "''") }}'
),

receipts as (
    select * from {{ source('tiktok_delivery', 'tiktok_delivery_receipts') }}
    where event_id = '{{ event_id | replace("'", "''") }}'
),

runs as (
    select * from {{ source('tiktok_delivery', 'tiktok_delivery_runs') }}
),

final as (
    select
        outbox.event_id,
        outbox.event,
        outbox.event_source,
        outbox.event_source_id,
        outbox.experiment_cell,
        outbox.value,
        outbox.currency,
        outbox.outboxed_at,
        outbox.is_erased,
        receipts.run_id,
        runs.started_at as run_started_at,
        runs.outcome as run_outcome,
        receipts.attempt,
        receipts.sent_at,
        receipts.acknowledged_at,
        receipts.status,
        receipts.http_status,
        receipts.api_code,
        receipts.api_message,
        receipts.request_id,
        receipts.test_event_code is not null as is_test_event,
        receipts.payload_sha256
    from outbox
    left join receipts
        on outbox.event_source_id = receipts.event_source_id
            and outbox.event = receipts.event
            and outbox.event_id = receipts.event_id
    left join runs
        on receipts.run_id = runs.run_id
)

select * from final
order by sent_at, attempt
