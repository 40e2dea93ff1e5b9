{#- What the pre-period says about every registered experiment, one row each: how the treatment
    cell's weekly revenue relates to the control's when nothing differs between them. Only the
    whole weeks inside [pre_period_started_at, started_at) whose customers have all matured count
    (pre_weeks, n).

    pre_ratio k = treatment / control revenue summed over those weeks (a ratio estimator: the
    counterfactual of a time-based regression through the origin, in the spirit of Kerman, Wang
    and Vaver 2017, "Estimating ad effectiveness using geo experiments in a time-based regression
    framework"); weekly_residual_sd (sd) is the standard deviation of treatment - k x control over
    those weeks. With T = k x C + noise, the window's incremental revenue Y_T - k x Y_C errs by the
    window's noise and by k's: its standard error is sd x sqrt(W + n x (Y_C / X_C)^2) (W window
    weeks, X_C the control's pre-period revenue, Y_C its window revenue); the readout computes it
    from the window it reads. Before the window, planned_se assumes the control keeps its
    pre-period weekly level (Y_C / X_C = W / n): sd x sqrt(W) x sqrt(1 + W / n). t_975 is
    Student's t for n - 1 degrees of freedom, from its Cornish-Fisher expansion
    (1.96 + 2.372 / df + 2.82 / df^2: within 0.5% for df >= 7); an experiment needs at least
    var tiktok_experiment_min_pre_weeks such weeks to be designed or read. -#}
{%- set window_hours = dbt.datediff('started_at', 'ended_at', 'hour') %}
{%- set pre_period_hours = dbt.datediff('pre_period_started_at', 'started_at', 'hour') %}

with experiments as (
    select
        experiment_id,
        cast({{ window_hours }} / 168.0 as {{ tiktok_outbox.type_double() }}) as window_weeks,
        -- the whole weeks of the pre-period: week_index -1 down to -(hours / 168, rounded down)
        floor({{ pre_period_hours }} / 168.0) as whole_pre_weeks
    from {{ ref('stg_first_party__experiments') }}
    where experiment_id is not null
),

weekly as (
    select weekly.*
    from {{ ref('int_experiment_geo_weekly') }} as weekly
    inner join experiments
        on weekly.experiment_id = experiments.experiment_id
    where weekly.period = 'pre'
        and weekly.is_matured
        and weekly.week_index >= -experiments.whole_pre_weeks
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
    group by
        ratio.experiment_id, ratio.pre_weeks, ratio.pre_revenue_treatment, ratio.pre_revenue_control,
        ratio.pre_ratio, ratio.weekly_revenue_treatment
),

final as (
    select
        residuals.*,
        experiments.window_weeks,
        cast(
            residuals.weekly_residual_sd * sqrt(experiments.window_weeks)
            * sqrt(1 + experiments.window_weeks / residuals.pre_weeks) as {{ tiktok_outbox.type_double() }}
        ) as planned_se,
        cast(
            1.96 + 2.372 / nullif(residuals.pre_weeks - 1, 0)
            + 2.82
            / nullif((residuals.pre_weeks - 1) * (residuals.pre_weeks - 1), 0) as {{ tiktok_outbox.type_double() }}
        ) as t_975,
        residuals.pre_weeks >= {{ var('tiktok_experiment_min_pre_weeks') | int }} as has_enough_pre_weeks
    from residuals
    inner join experiments
        on residuals.experiment_id = experiments.experiment_id
)

select * from final
