{#- Every conversion as a TikTok event candidate: mapped to a TikTok event, valued, given its
    event_id and experiment cell, and checked. exclusion_reason is null for events the outbox
    takes; otherwise it names the first rule the event failed (order below).

    Value of an anchor event in the treatment cell (README, "Modeled values"):
      1. score      = latest valid pLTV score known at build time (int_pltv_scores_latest)
      2. converted  = score in the reporting currency (seed fx_rates)
      3. calibrated = converted x calibration factor of its cohort (seed pltv_calibration_factors)
      4. blended    = (1 - w) x calibrated + w x observed net revenue, w = tiktok_value_revenue_blend
      5. capped     = min(blended, percentile tiktok_value_cap_percentile of blended values of the
                      business model's anchor events)
      6. value      = max(capped, tiktok_value_floor), rounded to cents
    The holdout cell and non-anchor events carry the observed (business-as-usual) value.

    Incremental (delete+insert on conversion_id): a build evaluates the new conversions and
    re-evaluates the open ones, i.e. every conversion not settled yet. Settled: it passed every
    check (the outbox took it, or holds its event key), or it failed on what cannot change any
    more: event_too_old (time only moves on), not_completed, missing_event_time, unmapped_event
    (the conversion's own fields are taken once, in int_conversions_attributed). An open exclusion
    (event_in_future, no_match_key, missing_value, invalid_currency, ...) is checked again on
    every build, and so is a new conversion that arrives late. The cap percentile and the
    duplicate event_id rank are taken over the stored rows and the evaluated ones together, as a
    full build takes them over every conversion. `dbt build --full-refresh` re-evaluates
    everything (after changing the mapping, the value vars or the calibration seed). -#}
{%- set reporting_currency = var('tiktok_reporting_currency') | upper -%}
{%- set blend = var('tiktok_value_revenue_blend') | float -%}
{%- set cap_percentile = var('tiktok_value_cap_percentile') | float -%}
{%- set floor_value = var('tiktok_value_floor') | float -%}
{%- set missing_policy = var('tiktok_missing_prediction_policy') -%}
{%- set holdout_mode = var('tiktok_holdout_mode') -%}
{#- the outbox stores money as decimal(18,2): anything this large is a broken score, not a value -#}
{%- set max_value = 1e15 | int -%}
{%- if not (0 <= blend <= 1) -%}
    {{ exceptions.raise_compiler_error("var tiktok_value_revenue_blend must be between 0 and 1, got " ~ blend) }}
{%- endif -%}
{%- if not (0 < cap_percentile <= 1) -%}
    {{ exceptions.raise_compiler_error("var tiktok_value_cap_percentile must be in (0, 1], got " ~ cap_percentile) }}
{%- endif -%}
{%- if missing_policy not in ['observed_value', 'exclude'] -%}
    {{ exceptions.raise_compiler_error("var tiktok_missing_prediction_policy must be 'observed_value' or 'exclude', got '" ~ missing_policy ~ "'") }}
{%- endif -%}
{%- if holdout_mode not in ['bau_value', 'suppress'] -%}
    {{ exceptions.raise_compiler_error("var tiktok_holdout_mode must be 'bau_value' or 'suppress', got '" ~ holdout_mode ~ "'") }}
{%- endif -%}

with conversions as (
    select * from {{ ref('int_conversions_attributed') }} as attributed
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as settled
        where settled.conversion_id = attributed.conversion_id
          and (
              settled.exclusion_reason is null
              or settled.exclusion_reason in ('event_too_old', 'not_completed', 'missing_event_time', 'unmapped_event')
          )
    )
    {% endif %}
),

mapping as (
    select *
    from {{ ref('tiktok_event_mapping') }}
    where is_enabled
      and business_model in ({% for m in var('tiktok_business_models') %}'{{ m }}'{% if not loop.last %}, {% endif %}{% endfor %})
),

identities as (
    select * from {{ ref('int_customer_identities') }}
),

scores as (
    select * from {{ ref('int_pltv_scores_latest') }}
),

cells as (
    select * from {{ ref('int_experiment_assignments') }}
),

fx as (
    select * from {{ ref('int_fx_to_reporting') }}
),

calibration as (
    select * from {{ ref('pltv_calibration_factors') }}
),

joined as (
    select
        conversions.*,
        mapping.tiktok_event as event,
        mapping.event_source,
        coalesce(mapping.is_value_anchor, false) as is_value_anchor,
        mapping.canonical_event is not null as is_mapped,
        {{ tiktok_outbox.tiktok_event_source_id('mapping.event_source') }} as event_source_id,
        identities.country_code,
        identities.email_sha256,
        identities.phone_sha256,
        identities.external_id_sha256,
        scores.predicted_ltv,
        scores.predicted_ltv_currency,
        scores.model_version,
        scores.scored_at,
        scores.is_valid_score,
        cells.experiment_cell,
        observed_fx.to_reporting as observed_fx_rate,
        score_fx.to_reporting as score_fx_rate,
        coalesce(conversions.captured_event_id, conversions.canonical_event || '-' || conversions.source_record_id) as event_id
    from conversions
    left join mapping
        on conversions.canonical_event = mapping.canonical_event
        and conversions.business_model = mapping.business_model
    left join identities
        on conversions.customer_id = identities.customer_id
    left join scores
        on conversions.customer_id = scores.customer_id
    left join cells
        on conversions.conversion_id = cells.conversion_id
    left join fx as observed_fx
        on conversions.observed_currency = observed_fx.currency_code
    left join fx as score_fx
        on scores.predicted_ltv_currency = score_fx.currency_code
),

calibrated as (
    select
        joined.*,
        coalesce(factor.calibration_factor, 1.0) as calibration_factor,
        joined.observed_value * joined.observed_fx_rate as observed_value_reporting,
        case when joined.is_valid_score then
            joined.predicted_ltv * joined.score_fx_rate * coalesce(factor.calibration_factor, 1.0)
        end as calibrated_value
    from joined
    left join (
        -- the most specific calibration row of each conversion's cohort wins
        select conversion_id, calibration_factor
        from (
            select
                joined.conversion_id,
                calibration.calibration_factor,
                row_number() over (
                    partition by joined.conversion_id
                    order by
                        case when calibration.model_version = '*' then 0 else 4 end
                        + case when calibration.business_model = '*' then 0 else 2 end
                        + case when calibration.country_code = '*' then 0 else 1 end desc
                ) as row_rank
            from joined
            inner join calibration
                on calibration.model_version in (joined.model_version, '*')
                and calibration.business_model in (joined.business_model, '*')
                and calibration.country_code in (coalesce(joined.country_code, '*'), '*')
        ) as ranked
        where row_rank = 1
    ) as factor
        on joined.conversion_id = factor.conversion_id
),

blended as (
    select
        calibrated.*,
        case when calibrated_value is not null then
            {{ 1 - blend }} * calibrated_value + {{ blend }} * coalesce(observed_value_reporting, 0)
        end as blended_value
    from calibrated
),

cap_population as (
    select business_model, blended_value
    from blended
    where is_value_anchor and blended_value is not null
    {% if is_incremental() %}
    union all
    select stored.business_model, stored.blended_value
    from {{ this }} as stored
    where stored.is_value_anchor and stored.blended_value is not null
      and not exists (select 1 from conversions where conversions.conversion_id = stored.conversion_id)
    {% endif %}
),

caps as (
    select business_model, {{ tiktok_outbox.percentile('blended_value', cap_percentile) }} as value_cap
    from cap_population
    group by business_model
),

valued as (
    select
        blended.*,
        caps.value_cap,
        case
            when blended.is_value_anchor and blended.experiment_cell = 'treatment' then
                case
                    when blended.blended_value is not null then 'pltv'
                    {%- if missing_policy == 'observed_value' %}
                    when blended.predicted_ltv is null and blended.observed_value_reporting > 0 then 'observed_fallback'
                    {%- endif %}
                    else 'none'
                end
            when blended.observed_value_reporting > 0 then 'observed'
            else 'none'
        end as value_basis
    from blended
    left join caps
        on blended.business_model = caps.business_model
),

event_keys as (
    -- the first conversion of an event key keeps it; later ones are duplicates
    select conversion_id, is_evaluated, row_number() over (
        partition by event_source_id, event, event_id order by converted_at, conversion_id
    ) as event_id_rank
    from (
        select conversion_id, event_source_id, event, event_id, converted_at, true as is_evaluated
        from valued
        {% if is_incremental() %}
        union all
        select stored.conversion_id, stored.event_source_id, stored.event, stored.event_id, stored.converted_at,
            false as is_evaluated
        from {{ this }} as stored
        where exists (
                select 1 from valued
                where valued.event_source_id = stored.event_source_id
                  and valued.event = stored.event
                  and valued.event_id = stored.event_id
            )
          and not exists (select 1 from conversions where conversions.conversion_id = stored.conversion_id)
        {% endif %}
    ) as keyed
),

finalized as (
    select
        valued.*,
        valued.value_basis = 'pltv' and valued.blended_value > valued.value_cap as is_value_capped,
        case valued.value_basis
            when 'pltv' then greatest(least(valued.blended_value, valued.value_cap), {{ floor_value }})
            when 'observed_fallback' then greatest(valued.observed_value_reporting, {{ floor_value }})
            when 'observed' then valued.observed_value_reporting
        end as raw_value,
        event_keys.event_id_rank
    from valued
    inner join event_keys
        on valued.conversion_id = event_keys.conversion_id
        and event_keys.is_evaluated
),

checked as (
    select
        finalized.*,
        case
            when not is_completed then 'not_completed'
            when not is_mapped then 'unmapped_event'
            when converted_at is null then 'missing_event_time'
            when converted_at > {{ dbt.dateadd('minute', var('tiktok_future_tolerance_minutes') | int, tiktok_outbox.tiktok_as_of()) }} then 'event_in_future'
            when converted_at < {{ dbt.dateadd('day', -(var('tiktok_max_event_age_days') | int), tiktok_outbox.tiktok_as_of()) }} then 'event_too_old'
            when event_source_id is null then 'missing_event_source_id'
            when event_id_rank > 1 then 'duplicate_event_id'
            {%- if holdout_mode == 'suppress' %}
            when experiment_cell = 'holdout' then 'holdout_suppressed'
            {%- endif %}
            when observed_value is not null and observed_fx_rate is null then 'invalid_currency'
            when predicted_ltv is not null and is_valid_score and score_fx_rate is null then 'invalid_currency'
            when is_value_anchor and experiment_cell = 'treatment' and predicted_ltv is not null and not is_valid_score then 'invalid_value'
            when raw_value is not null and not ({{ tiktok_outbox.is_finite_number('raw_value') }} and raw_value >= 0 and raw_value < {{ max_value }}) then 'invalid_value'
            when is_value_anchor and raw_value is null and not (experiment_cell = 'holdout') then 'missing_value'
            when email_sha256 is null and phone_sha256 is null and external_id_sha256 is null
                and ttclid is null and ttp is null and (ip is null or user_agent is null) then 'no_match_key'
        end as exclusion_reason
    from finalized
),

final as (
    select
        conversion_id,
        event_id,
        event,
        event_source,
        event_source_id,
        {{ tiktok_outbox.to_unix_seconds('converted_at') }} as event_time,
        converted_at,
        canonical_event,
        business_model,
        customer_id,
        email_sha256,
        phone_sha256,
        external_id_sha256,
        ttclid,
        ttp,
        ip,
        user_agent,
        page_url,
        {{ tiktok_outbox.round_money('raw_value') }} as value,
        case when raw_value is not null then '{{ reporting_currency }}' end as currency,
        order_id,
        experiment_cell,
        -- provenance only carries scores that could be used (NaN and the like are not numbers to ship)
        case when is_valid_score and predicted_ltv < {{ max_value }} then predicted_ltv end as predicted_ltv,
        predicted_ltv_currency,
        model_version,
        scored_at,
        calibration_factor,
        coalesce(is_value_capped, false) as is_value_capped,
        value_basis,
        {{ tiktok_outbox.round_money('observed_value_reporting') }} as observed_value,
        is_value_anchor,
        -- the uncapped value: the cap population of later incremental builds
        blended_value,
        exclusion_reason,
        {{ tiktok_outbox.tiktok_as_of() }} as evaluated_at
    from checked
)

select * from final
