{#- The readout of every registered geo experiment at maturity, one row each: intention to treat,
    by the cell each geo unit was assigned before the start (int_experiment_geo_cells), whatever
    was sent, on the revenue at maturity of the customers each cell acquired in the window
    (int_experiment_geo_weekly).

    Estimate: a ratio estimator against the pre-period (int_experiment_geo_baseline). Without the
    treatment, the treatment cell's window revenue would have been the control's times the
    pre-period ratio k: counterfactual = k x control; incremental_revenue = treatment -
    counterfactual; lift = incremental / counterfactual. The 95% interval is incremental +-
    t_975 x se, se = sd x sqrt(W + n x (Y_C / X_C)^2): the weekly noise of treatment - k x
    control measured on the pre-period (sd, n weeks), over the window's W weeks, plus k's own
    uncertainty scaled by the control's window revenue Y_C against its pre-period revenue X_C.

    Why not a bootstrap over the geo units: with the demo's 8 + 8 countries, resampling units
    made the counterfactual swing with whichever control countries were drawn twice, and the
    interval of a planted +4,900 read [-7,700, +6,900]; the pre-period's weekly noise reads it
    [+1,500, +6,100] (README, "Geo experiments").

    Return on the network's spend: the spend and the network's own claimed conversion value in
    the treatment units over the window (source ad_spend, by country: geo_level country only),
    incremental_roas = incremental revenue / that spend, with the same interval, beside
    platform_roas = claimed value / spend: what the network reports next to what it caused.

    The spend is the network's in those countries whatever the campaign (the source has no
    business line), on the ad account's days (spend_date) from started_at's date to ended_at's.

    An experiment is read once every customer acquired in its window has matured
    (ended_at + maturity_days); before that its row says until when (readable_from) and carries
    no estimate (status immature), nor does it with fewer than var
    tiktok_experiment_min_pre_weeks whole matured pre-period weeks (too_few_pre_weeks). -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}

with experiments as (
    select * from {{ ref('stg_first_party__experiments') }}
    where experiment_id is not null
),

weekly as (
    select * from {{ ref('int_experiment_geo_weekly') }}
    where period = 'test'
),

baseline as (
    select * from {{ ref('int_experiment_geo_baseline') }}
),

cells as (
    select * from {{ ref('int_experiment_geo_cells') }}
),

fx as (
    select * from {{ ref('int_fx_to_reporting') }}
),

treatment_spend as (
    select
        experiments.experiment_id,
        sum(cast(spend.spend as {{ tiktok_outbox.type_double() }}) * fx.to_reporting) as network_spend,
        sum(cast(spend.platform_conversion_value as {{ tiktok_outbox.type_double() }}) * fx.to_reporting)
            as platform_conversion_value
    from experiments
    inner join {{ ref('stg_first_party__ad_spend') }} as spend
        on experiments.network = spend.network
            and spend.spend_date >= cast(experiments.started_at as date)
            and spend.spend_date < cast(experiments.ended_at as date)
    inner join cells
        on experiments.experiment_id = cells.experiment_id
            and spend.country_code = cells.geo_unit
            and cells.experiment_cell = 'treatment'
    inner join fx
        on spend.currency = fx.currency_code
    where experiments.geo_level = 'country'
    group by experiments.experiment_id
),

window_totals as (
    select
        experiment_id,
        sum(customers_treatment) as customers_treatment,
        sum(customers_control) as customers_control,
        sum(revenue_treatment) as revenue_treatment,
        sum(revenue_control) as revenue_control
    from weekly
    group by experiment_id
),

estimates as (
    select
        window_totals.*,
        treatment_spend.network_spend,
        treatment_spend.platform_conversion_value,
        baseline.pre_ratio,
        baseline.pre_weeks,
        baseline.has_enough_pre_weeks,
        baseline.t_975,
        baseline.weekly_residual_sd * sqrt(
            baseline.window_weeks
            + baseline.pre_weeks * (window_totals.revenue_control / nullif(baseline.pre_revenue_control, 0))
            * (window_totals.revenue_control / nullif(baseline.pre_revenue_control, 0))
        ) as incremental_se,
        baseline.pre_ratio * window_totals.revenue_control as counterfactual_revenue
    from window_totals
    inner join baseline
        on window_totals.experiment_id = baseline.experiment_id
    left join treatment_spend
        on window_totals.experiment_id = treatment_spend.experiment_id
),

effects as (
    -- the incremental revenue and the half-width of its 95% interval, read by every figure below
    select
        estimates.*,
        estimates.revenue_treatment - estimates.counterfactual_revenue as incremental_revenue,
        estimates.t_975 * estimates.incremental_se as ci95_margin
    from estimates
),

final as (
    select
        experiments.experiment_id,
        experiments.network,
        experiments.business_model,
        experiments.started_at,
        experiments.ended_at,
        experiments.maturity_days,
        experiments.readable_from,
        case
            when experiments.readable_from > {{ as_of }} then 'immature'
            when coalesce(effects.has_enough_pre_weeks, false) then 'readable'
            else 'too_few_pre_weeks'
        end as status,
        effects.customers_treatment,
        effects.customers_control,
        effects.revenue_treatment,
        effects.revenue_control,
        effects.pre_ratio,
        effects.pre_weeks,
        effects.counterfactual_revenue,
        effects.incremental_revenue,
        effects.incremental_revenue - effects.ci95_margin as incremental_ci95_low,
        effects.incremental_revenue + effects.ci95_margin as incremental_ci95_high,
        effects.incremental_revenue / nullif(effects.counterfactual_revenue, 0) as lift,
        (effects.incremental_revenue - effects.ci95_margin)
        / nullif(effects.counterfactual_revenue, 0) as lift_ci95_low,
        (effects.incremental_revenue + effects.ci95_margin)
        / nullif(effects.counterfactual_revenue, 0) as lift_ci95_high,
        effects.network_spend,
        effects.incremental_revenue / nullif(effects.network_spend, 0) as incremental_roas,
        (effects.incremental_revenue - effects.ci95_margin)
        / nullif(effects.network_spend, 0) as incremental_roas_ci95_low,
        (effects.incremental_revenue + effects.ci95_margin)
        / nullif(effects.network_spend, 0) as incremental_roas_ci95_high,
        effects.platform_conversion_value / nullif(effects.network_spend, 0) as platform_roas
    from experiments
    left join effects
        on experiments.experiment_id = effects.experiment_id
            and experiments.readable_from <= {{ as_of }}
            and effects.has_enough_pre_weeks
)

select * from final
