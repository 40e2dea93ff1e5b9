{#- Event names and parameters seen in the outbox against the mapping seed campaigns optimise on.
    drift_status: ok | missing (a mapped event unseen for var tiktok_schema_drift_missing_days) |
    never_seen | unmapped (in the outbox, no longer in the mapping) | anchor_without_value (an
    anchor event whose recent rows lack value or currency). -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}
{%- set missing_days = var('tiktok_schema_drift_missing_days') | int -%}

with mapping as (
    select
        tiktok_event as event,
        event_source,
        max(case when is_value_anchor then 1 else 0 end) = 1 as is_value_anchor
    from {{ ref('tiktok_event_mapping') }}
    where is_enabled
    group by tiktok_event, event_source
),

seen as (
    select
        event,
        event_source,
        count(*) as events,
        min(converted_at) as first_seen_at,
        max(converted_at) as last_seen_at,
        sum(case when converted_at > {{ dbt.dateadd('day', -7, as_of) }} then 1 else 0 end) as events_last_7_days,
        -- holdout rows carry business-as-usual values (or none) by design: judge the treatment rows
        avg(
            case
                when experiment_cell <> 'treatment' then null
                when value is not null and currency is not null then 1.0
                else 0.0
            end
        ) as share_with_value_and_currency
    from {{ ref('tiktok_events_outbox') }}
    group by event, event_source
),

joined as (
    select
        coalesce(mapping.event, seen.event) as event,
        coalesce(mapping.event_source, seen.event_source) as event_source,
        mapping.event is not null as is_mapped,
        coalesce(mapping.is_value_anchor, false) as is_value_anchor,
        coalesce(seen.events, 0) as events,
        coalesce(seen.events_last_7_days, 0) as events_last_7_days,
        seen.first_seen_at,
        seen.last_seen_at,
        {{ dbt.datediff('seen.last_seen_at', as_of, 'day') }} as days_since_seen,  -- noqa: LT05
        seen.share_with_value_and_currency
    from mapping
    full outer join seen
        on mapping.event = seen.event
            and mapping.event_source = seen.event_source
),

final as (
    select
        joined.*,
        case
            when not is_mapped then 'unmapped'
            when last_seen_at is null then 'never_seen'
            when days_since_seen >= {{ missing_days }} then 'missing'
            when is_value_anchor and share_with_value_and_currency < 0.95 then 'anchor_without_value'
            else 'ok'
        end as drift_status
    from joined
)

select * from final
