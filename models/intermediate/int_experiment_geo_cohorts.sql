{#- What each geo unit of each registered experiment acquired, per week: the customers whose
    first conversion in the experiment's business model (any, when it names none) falls in the
    pre-period or the test window, and the revenue they brought in their first maturity_days
    (int_customer_revenue, of that business model), once those days have passed at the build's
    as-of (matured_customers; an immature customer's revenue is not counted). week_index counts
    weeks from started_at: negative in the pre-period. Grain: experiment_id, geo_unit,
    week_index. -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}
{%- set hours_since_start = dbt.datediff('experiments.started_at', 'acquisitions.acquired_at', 'hour') -%}

with experiments as (
    select * from {{ ref('stg_first_party__experiments') }}
    where experiment_id is not null
        and pre_period_started_at < started_at
        and started_at < ended_at
),

conversions as (
    select * from {{ ref('int_conversions') }}
    where customer_id is not null
),

identities as (
    select * from {{ ref('int_customer_identities') }}
),

revenue as (
    select * from {{ ref('int_customer_revenue') }}
),

acquisitions as (
    select
        experiments.experiment_id,
        conversions.customer_id,
        min(conversions.converted_at) as acquired_at
    from experiments
    inner join conversions
        on experiments.business_model is null or experiments.business_model = conversions.business_model
    group by experiments.experiment_id, conversions.customer_id
),

acquired as (
    select
        acquisitions.experiment_id,
        acquisitions.customer_id,
        acquisitions.acquired_at,
        experiments.business_model,
        experiments.maturity_days,
        {{ tiktok_outbox.experiment_geo_unit('experiments.geo_level', 'identities.country_code', 'identities.state') }}
            as geo_unit,
        cast(floor({{ hours_since_start }} / 168.0) as {{ dbt.type_int() }}) as week_index,
        {{ dbt.dateadd('day', 'experiments.maturity_days', 'acquisitions.acquired_at') }} <= {{ as_of }} as is_matured
    from acquisitions
    inner join experiments
        on acquisitions.experiment_id = experiments.experiment_id
    inner join identities
        on acquisitions.customer_id = identities.customer_id
    where acquisitions.acquired_at >= experiments.pre_period_started_at
        and acquisitions.acquired_at < experiments.ended_at
        and identities.country_code is not null
),

customer_revenue as (
    select
        acquired.experiment_id,
        acquired.customer_id,
        coalesce(sum(revenue.amount_reporting), 0) as revenue_at_maturity
    from acquired
    left join revenue
        on acquired.customer_id = revenue.customer_id
            and (acquired.business_model is null or acquired.business_model = revenue.business_model)
            and acquired.acquired_at <= revenue.paid_at
            and revenue.paid_at < {{ dbt.dateadd('day', 'acquired.maturity_days', 'acquired.acquired_at') }}
    where acquired.is_matured
    group by acquired.experiment_id, acquired.customer_id
),

final as (
    select
        acquired.experiment_id,
        acquired.geo_unit,
        acquired.week_index,
        case when acquired.week_index < 0 then 'pre' else 'test' end as period,
        count(*) as customers,
        sum(case when acquired.is_matured then 1 else 0 end) as matured_customers,
        coalesce(sum(customer_revenue.revenue_at_maturity), 0) as revenue_at_maturity
    from acquired
    left join customer_revenue
        on acquired.experiment_id = customer_revenue.experiment_id
            and acquired.customer_id = customer_revenue.customer_id
    group by acquired.experiment_id, acquired.geo_unit, acquired.week_index
)

select * from final
