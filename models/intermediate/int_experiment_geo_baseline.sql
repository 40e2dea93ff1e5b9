{#- What the pre-period says about every registered experiment, one row each: how the treatment
    cell's weekly revenue relates to the control's when nothing differs between them.
    pre_ratio k = treatment / control revenue over the matured pre-period weeks: the control
    scaled by k is the treatment's counterfactual (a time-based regression through the origin,
    Kerman, Wang and Vaver 2017, "Estimating ad effectiveness using geo experiments in a
    time-based regression framework"); weekly_residual_sd, the standard deviation of
    treatment - k x control over those weeks, is the noise of that counterfactual. Over a window
    of W weeks the incremental revenue's standard error is sd x sqrt(W) x sqrt(1 + W / n) (n
    pre-period weeks; the second factor is the uncertainty of k itself), and t_975 approximates
    Student's t quantile for n - 1 degrees of freedom (1.96 + 2.4 / (n - 1): within 1% for
    n >= 12, 5% for n >= 6). The design's detectable effect and the readout's interval are made
    of these two figures. -#}

with experiments as (
    select * from {{ ref('stg_first_party__experiments') }}
),

weekly as (
    select * from {{ ref('int_experiment_geo_weekly') }}
    where period = 'pre'
      and is_matured
),

ratio as (
    select
        experiment_id,
        count(*) as pre_weeks,
        sum(revenue_treatment) as pre_revenue_treatment,
        sum(revenue_control) as pre_revenue_control,
        sum(revenue_treatment) / nullif(sum(revenue_control), 0) as pre_ratio,
        avg(revenue_treatment) as weekly_revenue_treatment
    from weekly
    group by experiment_id
),

residuals as (
    select
        ratio.experiment_id,
        ratio.pre_weeks,
        ratio.pre_revenue_treatment,
        ratio.pre_revenue_control,
        ratio.pre_ratio,
        ratio.weekly_revenue_treatment,
        stddev_samp(weekly.revenue_treatment - ratio.pre_ratio * weekly.revenue_control) as weekly_residual_sd
    from ratio
    inner join weekly
        on ratio.experiment_id = weekly.experiment_id
    group by ratio.experiment_id, ratio.pre_weeks, ratio.pre_revenue_treatment, ratio.pre_revenue_control,
        ratio.pre_ratio, ratio.weekly_revenue_treatment
),

final as (
    select
        residuals.*,
        cast({{ dbt.datediff('experiments.started_at', 'experiments.ended_at', 'hour') }} / 168.0 as {{ tiktok_outbox.type_double() }}) as window_weeks,
        cast(residuals.weekly_residual_sd
            * sqrt({{ dbt.datediff('experiments.started_at', 'experiments.ended_at', 'hour') }} / 168.0)
            * sqrt(1 + {{ dbt.datediff('experiments.started_at', 'experiments.ended_at', 'hour') }} / 168.0 / residuals.pre_weeks)
            as {{ tiktok_outbox.type_double() }}) as incremental_se,
        cast(1.96 + 2.4 / nullif(residuals.pre_weeks - 1, 0) as {{ tiktok_outbox.type_double() }}) as t_975
    from residuals
    inner join experiments
        on residuals.experiment_id = experiments.experiment_id
)

select * from final
