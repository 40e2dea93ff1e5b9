{#- Predicted versus realised value of matured scores, by model version, cohort month (of the
    score) and predicted decile (1 = lowest): how well the model ranks customers, and how far off
    its level is. The customers and their scores are int_pltv_calibration_customers': the score
    the outbox sent (else the customer's first score), read once scored_at + horizon_days has
    passed. calibration_ratio = realised / predicted, before any calibration factor: below 1 the
    model over-predicts. The factors to put in seed pltv_calibration_factors, at its grain, are
    in pltv_calibration_factors_suggested. -#}

with customers as (
    select * from {{ ref('int_pltv_calibration_customers') }}
),

deciled as (
    select
        customers.*,
        ntile(10) over (
            partition by model_version, cohort_month order by predicted_value, customer_id
        ) as predicted_decile
    from customers
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
        sum(realised_value) / nullif(sum(predicted_value), 0) as calibration_ratio,
        sum(case when score_source = 'sent' then 1 else 0 end) as customers_sent,
        max(matured_at) as last_matured_at
    from deciled
    group by model_version, cohort_month, predicted_decile
)

select * from final
