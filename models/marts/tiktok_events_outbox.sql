{#- The outbox `sender push` reads. Append-only and frozen: a build appends this build's batch
    (int_tiktok_events_outbox_batch, whose tests gate the append) and never rewrites or drops a
    row. It ignores --full-refresh (full_refresh: false), so a rebuild, a mapping rename, a new
    salt or a new pixel id can never re-key or resend an event already here; they apply to
    conversions not sent yet. A conversion or event key that is already here is never added
    again (a second line of defence: the candidates already rank keys against this table).
    Every row of one build gets the build's outbox_seq, higher than any already here: the sender
    reads only the rows above what its last complete run read through (README, "What a run
    reads"). -#}

with batch as (
    select * from {{ ref('int_tiktok_events_outbox_batch') }}
),

final as (
    select
        batch.*,
        cast({{ tiktok_outbox.outbox_seq() }} as {{ dbt.type_bigint() }}) as outbox_seq
    from batch
    {%- if is_incremental() %}
    where not exists (
            select 1 from {{ this }} as existing
            where existing.conversion_id = batch.conversion_id
        )
        and not exists (
            select 1 from {{ this }} as existing
            where existing.event_source_id = batch.event_source_id
                and existing.event = batch.event
                and existing.event_id = batch.event_id
        )
    {%- endif %}
)

select * from final
