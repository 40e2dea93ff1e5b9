{#- One row per customer whose pLTV score has matured: scored_at + horizon_days is past the
    build's as-of, so the revenue the score predicted can be counted in full. The score is the
    one the outbox sent (score_source 'sent'): the customer's first treatment anchor valued by
    pLTV, with the model version, raw score, currency and calibration factor it carried. A
    customer the outbox never valued (history from before the outbox, holdout customers) is read
    on their first valid score, the prediction made when they arrived ('first_score'). Each
    customer belongs to the business model of that anchor (else of their first conversion) and to
    their country: the keys of seed pltv_calibration_factors. Customers without a conversion are
    left out: no factor ever applies to them.

    predicted_value is the raw score in the reporting currency, before any calibration factor, so
    realised_value / predicted_value is the factor the seed should hold; calibrated_value is what
    the factor in force made of it (sent scores only). realised_value is every payment of the
    customer from a day before the score until the horizon (int_customer_revenue): the score
    predicts a customer's value across the business lines.
    Customers with a SaaS signup are left out while stg_first_party__saas_invoices is empty (the
    advertiser has no saas_invoices table): their realised value cannot be observed then. -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}

with outbox as (
    select * from {{ ref('tiktok_events_outbox') }}
),

conversions as (
    select * from {{ ref('int_conversions') }}
),

predictions as (
    select * from {{ ref('stg_first_party__pltv_predictions') }}
    where customer_id is not null
        and scored_at is not null
        and {{ tiktok_outbox.is_finite_number('predicted_ltv') }}
        and predicted_ltv >= 0
        and scored_at <= {{ as_of }}
),

fx as (
    select * from {{ ref('int_fx_to_reporting') }}
),

identities as (
    select * from {{ ref('int_customer_identities') }}
),

saas_unobserved as (
    select distinct signups.customer_id
    from {{ ref('stg_first_party__signups') }} as signups
    cross join (select count(*) as invoices from {{ ref('stg_first_party__saas_invoices') }}) as billing
    where signups.customer_id is not null
        and billing.invoices = 0
),

sent as (
    select
        customer_id,
        model_version,
        business_model,
        scored_at,
        predicted_ltv,
        predicted_ltv_currency as currency,
        calibration_factor
    from (
        select
            conversions.customer_id,
            outbox.model_version,
            outbox.business_model,
            outbox.scored_at,
            outbox.predicted_ltv,
            outbox.predicted_ltv_currency,
            outbox.calibration_factor,
            row_number() over (
                partition by conversions.customer_id
                order by outbox.converted_at, outbox.conversion_id
            ) as row_rank
        from outbox
        inner join conversions
            on outbox.conversion_id = conversions.conversion_id
        where outbox.value_basis = 'pltv'
            and outbox.is_value_anchor
            and outbox.predicted_ltv is not null
            and outbox.scored_at is not null
            and conversions.customer_id is not null
    ) as ranked
    where row_rank = 1
),

first_conversion as (
    select
        customer_id,
        business_model
    from (
        select
            customer_id,
            business_model,
            row_number() over (partition by customer_id order by converted_at, conversion_id) as row_rank
        from conversions
        where customer_id is not null
    ) as ranked
    where row_rank = 1
),

first_score as (
    select
        customer_id,
        model_version,
        scored_at,
        predicted_ltv,
        currency
    from (
        select
            predictions.*,
            row_number() over (
                partition by customer_id
                order by
                    scored_at asc, model_version asc nulls last,
                    predicted_ltv asc, currency asc nulls last, horizon_days asc nulls last
            ) as row_rank
        from predictions
    ) as ranked
    where row_rank = 1
),

scores as (
    select
        customer_id,
        model_version,
        business_model,
        scored_at,
        predicted_ltv,
        currency,
        calibration_factor,
        'sent' as score_source
    from sent
    union all
    select
        first_score.customer_id,
        first_score.model_version,
        first_conversion.business_model,
        first_score.scored_at,
        first_score.predicted_ltv,
        first_score.currency,
        cast(null as {{ tiktok_outbox.type_double() }}) as calibration_factor,
        'first_score' as score_source
    from first_score
    inner join first_conversion
        on first_score.customer_id = first_conversion.customer_id
    where first_score.customer_id not in (select sent.customer_id from sent)
),

horizons as (
    -- the horizon of the score: the prediction row it came from (the shortest, if repeated)
    select
        customer_id,
        model_version,
        scored_at,
        min(horizon_days) as horizon_days
    from predictions
    group by customer_id, model_version, scored_at
),

matured as (
    select
        scores.customer_id,
        scores.model_version,
        scores.business_model,
        identities.country_code,
        scores.score_source,
        scores.scored_at,
        coalesce(horizons.horizon_days, 365) as horizon_days,
        scores.predicted_ltv * fx.to_reporting as predicted_value,
        scores.predicted_ltv * fx.to_reporting * scores.calibration_factor as calibrated_value
    from scores
    inner join fx
        on scores.currency = fx.currency_code
    left join horizons
        on scores.customer_id = horizons.customer_id
            and scores.model_version = horizons.model_version
            and scores.scored_at = horizons.scored_at
    left join identities
        on scores.customer_id = identities.customer_id
    where scores.customer_id not in (select saas_unobserved.customer_id from saas_unobserved)
        and {{ dbt.dateadd('day', 'coalesce(horizons.horizon_days, 365)', 'scores.scored_at') }} <= {{ as_of }}
),

realised as (
    select
        matured.customer_id,
        coalesce(sum(revenue.amount_reporting), 0) as realised_value
    from matured
    left join {{ ref('int_customer_revenue') }} as revenue
        on matured.customer_id = revenue.customer_id
            and revenue.paid_at >= {{ dbt.dateadd('day', -1, 'matured.scored_at') }}
            and revenue.paid_at < {{ dbt.dateadd('day', 'matured.horizon_days', 'matured.scored_at') }}
    group by matured.customer_id
),

final as (
    select
        matured.customer_id,
        matured.model_version,
        matured.business_model,
        matured.country_code,
        matured.score_source,
        matured.scored_at,
        cast({{ dbt.date_trunc('month', 'matured.scored_at') }} as date) as cohort_month,
        matured.horizon_days,
        {{ dbt.dateadd('day', 'matured.horizon_days', 'matured.scored_at') }} as matured_at,
        matured.predicted_value,
        matured.calibrated_value,
        realised.realised_value
    from matured
    inner join realised
        on matured.customer_id = realised.customer_id
)

select * from final
