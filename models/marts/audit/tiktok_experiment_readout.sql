{#- Holdout readout at the maturity window, one row per experiment cell. A customer enters the
    experiment with their first event in the outbox; customers who entered at least
    var tiktok_readout_window_days before the build are read out on the revenue they brought in
    that window from entry (int_customer_revenue). The treatment row carries the difference in
    revenue per customer against the holdout with a 95% confidence interval (Welch; assumes
    customers are independent, which geo cells are not). -#}
{%- set window_days = var('tiktok_readout_window_days') | int -%}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}

with outbox as (
    select
        outbox.*,
        conversions.customer_id
    from {{ ref('tiktok_events_outbox') }} as outbox
    inner join {{ ref('int_conversions') }} as conversions
        on outbox.conversion_id = conversions.conversion_id
    where conversions.customer_id is not null
),

delivered as (
    select distinct
        event_source_id,
        event,
        event_id
    from {{ ref('int_delivery_events_by_run') }}
    where status = 'delivered'
),

entries as (
    select
        customer_id,
        min(experiment_cell) as experiment_cell,
        count(distinct experiment_cell) as cells,
        min(converted_at) as entered_at
    from outbox
    group by customer_id
),

matured as (
    select *
    from entries
    where cells = 1
        and entered_at <= {{ dbt.dateadd('day', -window_days, as_of) }}
),

customer_outcomes as (
    select
        matured.customer_id,
        matured.experiment_cell,
        coalesce(sum(revenue.amount_reporting), 0) as revenue
    from matured
    left join {{ ref('int_customer_revenue') }} as revenue
        on matured.customer_id = revenue.customer_id
            and matured.entered_at <= revenue.paid_at
            and revenue.paid_at < {{ dbt.dateadd('day', window_days, 'matured.entered_at') }}
    group by matured.customer_id, matured.experiment_cell
),

customer_events as (
    select
        matured.customer_id,
        count(*) as events,
        sum(case when delivered.event_id is not null then 1 else 0 end) as events_delivered
    from matured
    inner join outbox
        on matured.customer_id = outbox.customer_id
    left join delivered
        on outbox.event_source_id = delivered.event_source_id
            and outbox.event = delivered.event
            and outbox.event_id = delivered.event_id
    group by matured.customer_id
),

cells as (
    select
        customer_outcomes.experiment_cell,
        count(*) as customers,
        sum(customer_events.events) as events,
        sum(customer_events.events_delivered) as events_delivered,
        avg(customer_outcomes.revenue) as revenue_per_customer,
        coalesce(var_samp(customer_outcomes.revenue), 0) as revenue_variance
    from customer_outcomes
    inner join customer_events
        on customer_outcomes.customer_id = customer_events.customer_id
    group by customer_outcomes.experiment_cell
),

holdout as (
    select * from cells
    where experiment_cell = 'holdout'
),

final as (
    select
        cells.experiment_cell,
        {{ window_days }} as readout_window_days,
        cells.customers,
        cells.events,
        cells.events_delivered,
        cells.revenue_per_customer,
        sqrt(cells.revenue_variance) as revenue_stddev,
        case when cells.experiment_cell = 'treatment' then
                cells.revenue_per_customer - holdout.revenue_per_customer
        end as difference_vs_holdout,
        case when cells.experiment_cell = 'treatment' then
                cells.revenue_per_customer - holdout.revenue_per_customer
                - 1.96 * sqrt(cells.revenue_variance / cells.customers + holdout.revenue_variance / holdout.customers)
        end as difference_ci95_low,
        case when cells.experiment_cell = 'treatment' then
                cells.revenue_per_customer - holdout.revenue_per_customer
                + 1.96 * sqrt(cells.revenue_variance / cells.customers + holdout.revenue_variance / holdout.customers)
        end as difference_ci95_high,
        case when cells.experiment_cell = 'treatment' then
                (cells.revenue_per_customer - holdout.revenue_per_customer) / nullif(holdout.revenue_per_customer, 0)
        end as relative_lift
    from cells
    left join holdout
        on true
)

select * from final
