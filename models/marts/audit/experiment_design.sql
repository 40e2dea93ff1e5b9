{#- The design of every registered geo experiment (source experiments), one row each: its
    window, its cells, whether they are balanced, and what it can detect.

    - Cells: int_experiment_geo_cells, one row per unit (a hash of the salt, fixed before the
      start).
    - Pre-period: the customers each unit acquired from pre_period_started_at to started_at, read
      on their revenue at maturity (int_experiment_geo_cohorts; matured cohorts only). Fewer than
      var tiktok_experiment_min_pre_weeks whole matured weeks: has_enough_pre_weeks is false, and
      the readout will not read it.
    - Overlap: overlapping_experiment names another experiment of the same network and business
      line whose window meets this one's pre-period or window (its treatment would bias this
      one's baseline or readout).
    - Balance: the standardised difference between the cells' means of ln(1 + pre-period revenue)
      per unit (log, so that one big country does not decide alone); balanced when its absolute
      value is at most var tiktok_experiment_max_imbalance. Unbalanced: change the salt before
      the start.
    - Detectable effect: the readout compares the treatment's window revenue with the control's
      scaled by the pre-period ratio k (int_experiment_geo_baseline). On the pre-period, where
      nothing differs, treatment - k x control is noise; from its standard error over the window
      (planned_se), (t_975 + 0.84) x planned_se is the smallest incremental revenue a
      two-sided 5% test detects with 80% power (mde_revenue), as a share of the treatment's
      expected window revenue (mde_lift), and per unit of the planned spend in the reporting
      currency (mde_roas: the smallest incremental ROAS it can tell from zero). -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}
{%- set max_imbalance = var('tiktok_experiment_max_imbalance') | float -%}

with experiments as (
    select * from {{ ref('stg_first_party__experiments') }}
    where experiment_id is not null
),

cells as (
    select * from {{ ref('int_experiment_geo_cells') }}
),

cohorts as (
    select * from {{ ref('int_experiment_geo_cohorts') }}
),

fx as (
    select * from {{ ref('int_fx_to_reporting') }}
),

unit_pre as (
    select
        cells.experiment_id,
        cells.geo_unit,
        cells.experiment_cell,
        coalesce(sum(case when cohorts.period = 'pre' then cohorts.revenue_at_maturity end), 0) as pre_revenue
    from cells
    left join cohorts
        on cells.experiment_id = cohorts.experiment_id
            and cells.geo_unit = cohorts.geo_unit
            and cohorts.matured_customers = cohorts.customers
    group by cells.experiment_id, cells.geo_unit, cells.experiment_cell
),

cell_stats as (
    select
        experiment_id,
        count(case when experiment_cell = 'treatment' then 1 end) as units_treatment,
        count(case when experiment_cell = 'control' then 1 end) as units_control,
        sum(case when experiment_cell = 'treatment' then pre_revenue else 0 end) as pre_revenue_treatment,
        sum(case when experiment_cell = 'control' then pre_revenue else 0 end) as pre_revenue_control,
        avg(case when experiment_cell = 'treatment' then ln(1 + pre_revenue) end) as log_mean_treatment,
        avg(case when experiment_cell = 'control' then ln(1 + pre_revenue) end) as log_mean_control,
        var_samp(case when experiment_cell = 'treatment' then ln(1 + pre_revenue) end) as log_var_treatment,
        var_samp(case when experiment_cell = 'control' then ln(1 + pre_revenue) end) as log_var_control
    from unit_pre
    group by experiment_id
),

baseline as (
    select * from {{ ref('int_experiment_geo_baseline') }}
),

overlapping as (
    -- another experiment on the same network and business line whose window meets this one's
    -- pre-period or window: its treatment would bias this one's baseline or readout
    select
        experiments.experiment_id,
        min(other.experiment_id) as overlapping_experiment
    from experiments
    inner join experiments as other
        on experiments.experiment_id <> other.experiment_id
            and coalesce(other.network, '') = coalesce(experiments.network, '')
            and (
                other.business_model is null or experiments.business_model is null
                or experiments.business_model = other.business_model
            )
            and experiments.ended_at > other.started_at
            and experiments.pre_period_started_at < other.ended_at
    group by experiments.experiment_id
),

final as (
    select
        experiments.experiment_id,
        experiments.network,
        experiments.business_model,
        experiments.geo_level,
        experiments.salt,
        experiments.pre_period_started_at,
        experiments.started_at,
        experiments.ended_at,
        experiments.maturity_days,
        experiments.readable_from,
        case
            when {{ as_of }} < experiments.started_at then 'designed'
            when {{ as_of }} < experiments.ended_at then 'running'
            when {{ as_of }} < experiments.readable_from then 'maturing'
            else 'readable'
        end as status,
        cell_stats.units_treatment,
        cell_stats.units_control,
        cell_stats.pre_revenue_treatment,
        cell_stats.pre_revenue_control,
        cell_stats.pre_revenue_treatment
        / nullif(cell_stats.pre_revenue_treatment + cell_stats.pre_revenue_control, 0) as pre_share_treatment,
        (cell_stats.log_mean_treatment - cell_stats.log_mean_control)
        / nullif(sqrt((cell_stats.log_var_treatment + cell_stats.log_var_control) / 2), 0) as standardized_difference,
        coalesce(abs(
            (cell_stats.log_mean_treatment - cell_stats.log_mean_control)
            / nullif(sqrt((cell_stats.log_var_treatment + cell_stats.log_var_control) / 2), 0)
        ) <= {{ max_imbalance }}, false)
        and cell_stats.units_treatment >= 2 and cell_stats.units_control >= 2 as is_balanced,
        baseline.pre_weeks,
        coalesce(baseline.has_enough_pre_weeks, false) as has_enough_pre_weeks,
        overlapping.overlapping_experiment,
        baseline.pre_ratio,
        baseline.weekly_residual_sd,
        baseline.window_weeks,
        (baseline.t_975 + 0.84) * baseline.planned_se as mde_revenue,
        (baseline.t_975 + 0.84) * baseline.planned_se
        / nullif(baseline.weekly_revenue_treatment * baseline.window_weeks, 0) as mde_lift,
        experiments.planned_spend * fx.to_reporting as planned_spend,
        (baseline.t_975 + 0.84) * baseline.planned_se
        / nullif(experiments.planned_spend * fx.to_reporting, 0) as mde_roas
    from experiments
    left join cell_stats
        on experiments.experiment_id = cell_stats.experiment_id
    left join baseline
        on experiments.experiment_id = baseline.experiment_id
    left join overlapping
        on experiments.experiment_id = overlapping.experiment_id
    left join fx
        on experiments.currency = fx.currency_code
)

select * from final
