{#- Predicted versus realised value for cohorts past their maturity window: each customer's first
    valid score (the prediction made when they arrived), converted to the reporting currency, is
    compared with the revenue they really brought over the model's horizon. Cohorts are months of
    that first score; only cohorts scored at least var tiktok_calibration_maturity_days before
    the build are mature. Grain: model_version, cohort_month, predicted_decile (1 = lowest).
    calibration_ratio = realised / predicted: below 1 the model over-predicts; a factor for
    seed pltv_calibration_factors is this ratio.
    Customers with a SaaS signup are left out: the sources carry no SaaS billing, so their
    realised value cannot be observed (add a payments source to int_customer_revenue to include
    them). -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}

with predictions as (
    select * from {{ ref('stg_first_party__pltv_predictions') }}
    where customer_id is not null
      and {{ tiktok_outbox.is_finite_number('predicted_ltv') }}
      and predicted_ltv >= 0
      and scored_at <= {{ dbt.dateadd('day', -(var('tiktok_calibration_maturity_days') | int), as_of) }}
),

fx as (
    select * from {{ ref('int_fx_to_reporting') }}
),

first_score as (
    select customer_id, predicted_ltv, currency, model_version, scored_at, horizon_days
    from (
        select
            predictions.*,
            row_number() over (
                partition by customer_id
                order by scored_at asc nulls last, model_version asc nulls last,
                    predicted_ltv asc nulls last, currency asc nulls last, horizon_days asc nulls last
            ) as row_rank
        from predictions
    ) as ranked
    where row_rank = 1
),

saas_customers as (
    select distinct customer_id from {{ ref('stg_first_party__signups') }} where customer_id is not null
),

scored as (
    select
        first_score.customer_id,
        first_score.model_version,
        cast({{ dbt.date_trunc('month', 'first_score.scored_at') }} as date) as cohort_month,
        first_score.scored_at,
        coalesce(first_score.horizon_days, 365) as horizon_days,
        first_score.predicted_ltv * fx.to_reporting as predicted_value
    from first_score
    inner join fx
        on first_score.currency = fx.currency_code
    where first_score.customer_id not in (select customer_id from saas_customers)
),

realised as (
    select
        scored.customer_id,
        coalesce(sum(revenue.amount_reporting), 0) as realised_value
    from scored
    left join {{ ref('int_customer_revenue') }} as revenue
        on scored.customer_id = revenue.customer_id
        and revenue.paid_at >= {{ dbt.dateadd('day', -1, 'scored.scored_at') }}
        and revenue.paid_at < {{ dbt.dateadd('day', 'scored.horizon_days', 'scored.scored_at') }}
    group by scored.customer_id
),

deciled as (
    select
        scored.*,
        realised.realised_value,
        ntile(10) over (
            partition by scored.model_version, scored.cohort_month order by scored.predicted_value, scored.customer_id
        ) as predicted_decile
    from scored
    inner join realised
        on scored.customer_id = realised.customer_id
),

final as (
    select
        model_version,
        cohort_month,
        predicted_decile,
        count(*) as customers,
        sum(predicted_value) as predicted_total,
        sum(realised_value) as realised_total,
        avg(predicted_value) as predicted_mean,
        avg(realised_value) as realised_mean,
        sum(realised_value) / nullif(sum(predicted_value), 0) as calibration_ratio
    from deciled
    group by model_version, cohort_month, predicted_decile
)

select * from final
