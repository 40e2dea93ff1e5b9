{#- The latest pLTV score per customer known at build time: scored no later than the build's
    as-of instant and no earlier than tiktok_prediction_max_age_days before it. Invalid scores
    (null, NaN, infinite, negative) are kept and flagged, so that they exclude their events
    visibly instead of silently falling back to an older score. -#}

with predictions as (
    select * from {{ ref('stg_first_party__pltv_predictions') }}
),

known_at_build as (
    select *
    from predictions
    where customer_id is not null
        and scored_at <= {{ tiktok_outbox.tiktok_as_of() }}
        and scored_at
        >= {{ dbt.dateadd('day', -(var('tiktok_prediction_max_age_days') | int), tiktok_outbox.tiktok_as_of()) }}
),

ranked as (
    select
        known_at_build.*,
        row_number() over (
            partition by customer_id
            order by
                scored_at desc nulls last, model_version desc nulls last,
                predicted_ltv desc nulls last, currency asc nulls last, horizon_days desc nulls last
        ) as row_rank
    from known_at_build
),

final as (
    select
        customer_id,
        predicted_ltv,
        currency as predicted_ltv_currency,
        model_version,
        scored_at,
        horizon_days,
        {{ tiktok_outbox.is_finite_number('predicted_ltv') }} and predicted_ltv >= 0 as is_valid_score
    from ranked
    where row_rank = 1
)

select * from final
