{#- Readiness for value-based optimisation, one row per anchor event of the mapping: a checklist
    over the last 7 days with the reason for every failed check.
      volume:    anchor events >= var tiktok_vbo_min_weekly_events
      value:     >= 95% carry a value, and the values vary (cv >= var tiktok_min_value_cv)
      currency:  every currency is one TikTok accepts
      match:     match coverage (email, phone or ttclid) >= var tiktok_min_match_coverage
      latency:   p90 from conversion to delivery <= var tiktok_latency_goal_hours
    TikTok does not publish exact thresholds; these are settings. -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}
{%- set week_start = dbt.dateadd('day', -7, as_of) -%}

with anchors as (
    select distinct tiktok_event as event, event_source
    from {{ ref('tiktok_event_mapping') }}
    where is_enabled and is_value_anchor
),

recent as (
    select *
    from {{ ref('tiktok_events_outbox') }}
    where converted_at > {{ week_start }}
),

currencies as (
    select currency_code from {{ ref('tiktok_currencies') }}
),

volume as (
    select
        recent.event,
        count(*) as weekly_events,
        avg(case when recent.value is not null then 1.0 else 0.0 end) as share_with_value,
        stddev_samp(cast(recent.value as {{ tiktok_outbox.type_double() }}))
            / nullif(avg(cast(recent.value as {{ tiktok_outbox.type_double() }})), 0) as value_cv,
        sum(case when recent.currency is not null and currencies.currency_code is null then 1 else 0 end) as invalid_currency_events,
        avg(
            case when recent.email_sha256 is not null or recent.phone_sha256 is not null or recent.ttclid is not null
                then 1.0 else 0.0 end
        ) as match_coverage
    from recent
    left join currencies
        on recent.currency = currencies.currency_code
    group by recent.event
),

latency as (
    select
        event,
        max(p90_hours) as worst_daily_p90_hours
    from {{ ref('tiktok_delivery_latency') }}
    where delivery_date > cast({{ week_start }} as date)
    group by event
),

checks as (
    select
        anchors.event,
        anchors.event_source,
        coalesce(volume.weekly_events, 0) as weekly_events,
        volume.share_with_value,
        volume.value_cv,
        coalesce(volume.invalid_currency_events, 0) as invalid_currency_events,
        volume.match_coverage,
        latency.worst_daily_p90_hours,
        coalesce(volume.weekly_events, 0) >= {{ var('tiktok_vbo_min_weekly_events') }} as has_volume,
        coalesce(volume.share_with_value >= 0.95 and volume.value_cv >= {{ var('tiktok_min_value_cv') }}, false) as has_varying_value,
        coalesce(volume.invalid_currency_events, 0) = 0 as has_valid_currency,
        coalesce(volume.match_coverage >= {{ var('tiktok_min_match_coverage') }}, false) as has_match_coverage,
        coalesce(latency.worst_daily_p90_hours <= {{ var('tiktok_latency_goal_hours') }}, false) as has_timely_delivery
    from anchors
    left join volume
        on anchors.event = volume.event
    left join latency
        on anchors.event = latency.event
),

final as (
    select
        checks.*,
        has_volume and has_varying_value and has_valid_currency and has_match_coverage and has_timely_delivery as is_ready,
        nullif(
            case when has_volume then '' else 'volume: ' || cast(weekly_events as {{ dbt.type_string() }})
                || ' anchor events in 7 days, below {{ var("tiktok_vbo_min_weekly_events") }}; ' end
            || case when has_varying_value then '' else 'value: missing on some events or not varying; ' end
            || case when has_valid_currency then '' else 'currency: unsupported currency on some events; ' end
            || case when has_match_coverage then '' else 'match: coverage below {{ var("tiktok_min_match_coverage") }}; ' end
            || case when has_timely_delivery then '' else
                case when worst_daily_p90_hours is null then 'latency: nothing delivered in 7 days; '
                else 'latency: p90 above {{ var("tiktok_latency_goal_hours") }} h; ' end end,
            ''
        ) as not_ready_reasons
    from checks
)

select * from final
