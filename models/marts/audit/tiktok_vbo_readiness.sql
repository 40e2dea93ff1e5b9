{#- Readiness for value-based optimisation (VBO), one row per anchor event of the mapping: a
    checklist over the last 7 days (up to var tiktok_as_of) with the reason for every failed check.

    Only the treatment cell counts: it is what TikTok optimises on. Holdout events carry
    business-as-usual values (or none) by design and are left out of every check.

    volume:    qualifying events, i.e. treatment events with value > 0 and a currency TikTok
               accepts, against TikTok's published VBO eligibility (help centre pages
               value-based-optimization-web and value-based-optimization-app):
                 web (and any source but app): at least 20 unique attributed CompletePayment
                   events with value and currency in 7 days; "attributed" is approximated by the
                   event carrying a key of var tiktok_vbo_attribution_keys (default ttclid: a
                   click TikTok attributes deterministically; ttp, email, phone, external_id widen
                   it towards view-through and matched conversions). TikTok's own attribution
                   decides in the end, so this is an estimate from the sender's side.
                 app: more than 30 purchase events with value in 7 days (Android only; app events
                   are attributed through the SDK or MMP, which the outbox cannot see, so no key
                   is required).
               Thresholds: var tiktok_vbo_min_web_events (>=) and tiktok_vbo_min_app_events (>).
    value:     >= 95% carry a value, and the values vary (cv >= var tiktok_min_value_cv)
    currency:  every currency is one TikTok accepts
    match:     match coverage (email, phone or ttclid) >= var tiktok_min_match_coverage
    latency:   worst daily p90 from conversion to first delivery <= var tiktok_latency_goal_hours
    TikTok publishes no rule for value, currency, match or latency; those thresholds are settings. -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}
{%- set week_start = dbt.dateadd('day', -7, as_of) -%}
{%- set min_web = var('tiktok_vbo_min_web_events', 20) | int -%}
{%- set min_app = var('tiktok_vbo_min_app_events', 30) | int -%}
{%- set min_cv = var('tiktok_min_value_cv') -%}
{%- set min_coverage = var('tiktok_min_match_coverage') -%}
{%- set latency_goal = var('tiktok_latency_goal_hours') -%}
{%- set text = dbt.type_string() -%}
{%- set key_columns = {
    'ttclid': 'ttclid', 'ttp': 'ttp', 'email': 'email_sha256',
    'phone': 'phone_sha256', 'external_id': 'external_id_sha256'} -%}
{%- set attribution_keys = var('tiktok_vbo_attribution_keys', ['ttclid']) -%}
{%- if attribution_keys is string -%}{%- set attribution_keys = [attribution_keys] -%}{%- endif -%}
{%- if attribution_keys | length == 0 -%}
    {{ exceptions.raise_compiler_error("var tiktok_vbo_attribution_keys must name at least one of: " ~ (key_columns.keys() | join(', '))) }}
{%- endif -%}
{%- for key in attribution_keys -%}
{%- if key not in key_columns -%}
        {{ exceptions.raise_compiler_error("var tiktok_vbo_attribution_keys: unknown key '" ~ key ~ "', expected some of: " ~ (key_columns.keys() | join(', '))) }}
    {%- endif -%}
{%- endfor -%}

with anchors as (
    select distinct
        tiktok_event as event,
        event_source
    from {{ ref('tiktok_event_mapping') }}
    where is_enabled and is_value_anchor
),

currencies as (
    select currency_code from {{ ref('tiktok_currencies') }}
),

treatment as (
    select
        outbox.*,
        currencies.currency_code is not null as has_accepted_currency,
        (
            {%- for key in attribution_keys %}
            outbox.{{ key_columns[key] }} is not null{{ ' or' if not loop.last }}
            {%- endfor %}
        ) as has_attribution_key
    from {{ ref('tiktok_events_outbox') }} as outbox
    left join currencies
        on outbox.currency = currencies.currency_code
    where outbox.experiment_cell = 'treatment'
        and outbox.converted_at > {{ week_start }}
        and outbox.converted_at <= {{ as_of }}
),

volume as (
    select
        event,
        event_source,
        count(*) as treatment_events,
        sum(
            case when value > 0 and has_accepted_currency and (event_source = 'app' or has_attribution_key)
                    then 1
                else 0
            end
        ) as weekly_events,
        avg(case when value is not null then 1.0 else 0.0 end) as share_with_value,
        stddev_samp(cast(value as {{ tiktok_outbox.type_double() }}))
        / nullif(avg(cast(value as {{ tiktok_outbox.type_double() }})), 0) as value_cv,
        sum(case when currency is not null and not has_accepted_currency then 1 else 0 end) as invalid_currency_events,
        avg(
            case when email_sha256 is not null or phone_sha256 is not null or ttclid is not null
                    then 1.0
                else 0.0
            end
        ) as match_coverage
    from treatment
    group by event, event_source
),

-- latency of the treatment events delivered in the last 7 days, each at its first delivery
delivered as (
    select
        outbox.event_source,
        deliveries.event,
        deliveries.event_id,
        min(deliveries.delivered_at) as delivered_at,
        min(deliveries.event_time) as event_time
    from {{ ref('int_delivery_events_by_run') }} as deliveries
    inner join {{ ref('tiktok_events_outbox') }} as outbox
        on deliveries.event_source_id = outbox.event_source_id
            and deliveries.event = outbox.event
            and deliveries.event_id = outbox.event_id
    where deliveries.status = 'delivered'
        and outbox.experiment_cell = 'treatment'
    group by outbox.event_source, deliveries.event_source_id, deliveries.event, deliveries.event_id
),

daily_latency as (
    select
        event,
        event_source,
        cast({{ dbt.date_trunc('day', 'delivered_at') }} as date) as delivery_date,
        {{ tiktok_outbox.percentile(
            'cast(' ~ tiktok_outbox.to_unix_seconds('delivered_at') ~ ' - event_time as ' ~ tiktok_outbox.type_double() ~ ') / 3600.0',
            0.9) }} as p90_hours
    from delivered
    where delivered_at > {{ week_start }}
        and delivered_at <= {{ as_of }}
    group by event, event_source, cast({{ dbt.date_trunc('day', 'delivered_at') }} as date)
),

latency as (
    select
        event,
        event_source,
        max(p90_hours) as worst_daily_p90_hours
    from daily_latency
    group by event, event_source
),

checks as (
    select
        anchors.event,
        anchors.event_source,
        coalesce(volume.treatment_events, 0) as treatment_events,
        coalesce(volume.weekly_events, 0) as weekly_events,
        case when anchors.event_source = 'app' then {{ min_app }} else {{ min_web }} end as min_weekly_events,
        case when anchors.event_source = 'app' then 'more than' else 'at least' end as volume_rule,
        volume.share_with_value,
        volume.value_cv,
        coalesce(volume.invalid_currency_events, 0) as invalid_currency_events,
        volume.match_coverage,
        latency.worst_daily_p90_hours,
        case
            when anchors.event_source = 'app' then coalesce(volume.weekly_events, 0) > {{ min_app }}
            else coalesce(volume.weekly_events, 0) >= {{ min_web }}
        end as has_volume,
        coalesce(volume.share_with_value >= 0.95 and volume.value_cv >= {{ min_cv }}, false) as has_varying_value,
        coalesce(volume.invalid_currency_events, 0) = 0 as has_valid_currency,
        coalesce(volume.match_coverage >= {{ min_coverage }}, false) as has_match_coverage,
        coalesce(latency.worst_daily_p90_hours <= {{ latency_goal }}, false) as has_timely_delivery
    from anchors
    left join volume
        on anchors.event = volume.event
            and anchors.event_source = volume.event_source
    left join latency
        on anchors.event = latency.event
            and anchors.event_source = latency.event_source
),

final as (
    select
        checks.*,
        has_volume
        and has_varying_value
        and has_valid_currency
        and has_match_coverage
        and has_timely_delivery as is_ready,
        nullif(
            case when has_volume then '' else
                    'volume: ' || cast(weekly_events as {{ text }}) || ' '
                    || case when event_source = 'app' then '' else 'attributed ' end
                    || event || ' events with value and currency in 7 days (treatment), TikTok needs '
                    || volume_rule || ' ' || cast(min_weekly_events as {{ text }}) || '; '
            end
            || case when has_varying_value then '' else
                    case
                        when share_with_value is null then 'value: no treatment events in 7 days; '
                        when share_with_value < 0.95
                            then 'value: ' || cast(cast(floor(share_with_value * 100) as integer) as {{ text }})
                                || '% of treatment events carry a value, needs at least 95%; '
                        when
                            value_cv is null
                            then 'value: values do not vary (one event, or a mean of zero), '
                                || 'needs a cv of at least {{ min_cv }}; '
                        else 'value: cv '
                            || cast(cast(value_cv as decimal(18, 2)) as {{ text }})
                            || ', needs at least {{ min_cv }}; '
                    end
            end
            || case when has_valid_currency then '' else
                    'currency: '
                    || cast(invalid_currency_events as {{ text }})
                    || ' events in a currency TikTok does not accept; '
            end
            || case when has_match_coverage then '' else
                    case when match_coverage is null then 'match: no treatment events in 7 days; '
                        else 'match: coverage ' || cast(cast(floor(match_coverage * 100) as integer) as {{ text }})
                            || '% (email, phone or ttclid), needs at least {{ (min_coverage * 100) | round | int }}%; '
                    end
            end
            || case when has_timely_delivery then '' else
                    case when worst_daily_p90_hours is null then 'latency: no treatment event delivered in 7 days; '
                        else 'latency: worst daily p90 '
                            || cast(cast(worst_daily_p90_hours as decimal(18, 2)) as {{ text }})
                            || ' h above the {{ latency_goal }} h goal; '
                    end
            end,
            ''
        ) as not_ready_reasons
    from checks
)

select * from final
