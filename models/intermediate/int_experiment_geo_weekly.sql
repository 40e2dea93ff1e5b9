{#- The two cells of every registered experiment side by side, week by week: the revenue at
    maturity of the customers the treatment units and the control units acquired that week
    (int_experiment_geo_cohorts by int_experiment_geo_cells). The series the design and the
    readout are computed on. is_matured: every customer acquired that week has matured. Grain:
    experiment_id, week_index (weeks from started_at; negative in the pre-period). -#}

with cohorts as (
    select * from {{ ref('int_experiment_geo_cohorts') }}
),

cells as (
    select * from {{ ref('int_experiment_geo_cells') }}
),

final as (
    select
        cohorts.experiment_id,
        cohorts.week_index,
        case when cohorts.week_index < 0 then 'pre' else 'test' end as period,
        sum(case when cells.experiment_cell = 'treatment' then cohorts.customers else 0 end) as customers_treatment,
        sum(case when cells.experiment_cell = 'control' then cohorts.customers else 0 end) as customers_control,
        sum(case when cells.experiment_cell = 'treatment' then cohorts.revenue_at_maturity else 0 end)
            as revenue_treatment,
        sum(case when cells.experiment_cell = 'control' then cohorts.revenue_at_maturity else 0 end) as revenue_control,
        sum(cohorts.matured_customers) = sum(cohorts.customers) as is_matured
    from cohorts
    inner join cells
        on cohorts.experiment_id = cells.experiment_id
            and cohorts.geo_unit = cells.geo_unit
    group by cohorts.experiment_id, cohorts.week_index
)

select * from final
