{#- Cross-network readout, one row per ISO week (Monday) and network: what each network spent
    and what its own reporting claims (conversions, value, ROAS), beside what the business really
    took in that week, repeated on every network's row: first-party revenue by the week it was
    paid (int_customer_revenue), new paying customers, total spend and MER = revenue / total
    spend. A network's ROAS rising while MER stays flat or falls is attribution, not
    incrementality (README, "Ad spend").
    Only weeks complete at the build's as-of in which some network spent; every network seen in
    the spend has a row in every such week (0 spent when it paused; a week when every network
    paused has no row). Amounts are in
    var tiktok_reporting_currency; spend in a currency without an FX rate is left out of the
    sums and counted in spend_rows_without_fx_rate (a warn test). -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}
{%- set double = tiktok_outbox.type_double() -%}

with spend as (
    select * from {{ ref('stg_first_party__ad_spend') }}
    where spend_date is not null and network is not null
),

fx as (
    select * from {{ ref('int_fx_to_reporting') }}
),

revenue as (
    select * from {{ ref('int_customer_revenue') }}
),

current_week as (
    select {{ tiktok_outbox.iso_week_start(as_of) }} as week_start
),

spend_weekly as (
    select
        {{ tiktok_outbox.iso_week_start('spend.spend_date') }} as week_start,
        spend.network,
        count(*) as spend_rows,
        sum(case when fx.currency_code is null then 1 else 0 end) as spend_rows_without_fx_rate,
        sum(cast(spend.spend as {{ double }}) * fx.to_reporting) as spend,
        sum(spend.platform_conversions) as platform_conversions,
        sum(cast(spend.platform_conversion_value as {{ double }}) * fx.to_reporting) as platform_conversion_value
    from spend
    left join fx
        on spend.currency = fx.currency_code
    group by {{ tiktok_outbox.iso_week_start('spend.spend_date') }}, spend.network
),

weeks as (
    select distinct spend_weekly.week_start
    from spend_weekly
    cross join current_week
    where spend_weekly.week_start < current_week.week_start
),

networks as (
    select distinct network from spend_weekly
),

week_days as (
    select
        {{ tiktok_outbox.iso_week_start('spend_date') }} as week_start,
        count(distinct spend_date) as days_with_spend
    from spend
    group by {{ tiktok_outbox.iso_week_start('spend_date') }}
),

first_payments as (
    select
        customer_id,
        min(paid_at) as first_paid_at
    from revenue
    group by customer_id
),

revenue_weekly as (
    select
        {{ tiktok_outbox.iso_week_start('paid_at') }} as week_start,
        sum(amount_reporting) as blended_revenue
    from revenue
    group by {{ tiktok_outbox.iso_week_start('paid_at') }}
),

new_customers_weekly as (
    select
        {{ tiktok_outbox.iso_week_start('first_paid_at') }} as week_start,
        count(*) as new_customers
    from first_payments
    group by {{ tiktok_outbox.iso_week_start('first_paid_at') }}
),

grid as (
    select
        weeks.week_start,
        networks.network,
        coalesce(spend_weekly.spend_rows, 0) as spend_rows,
        coalesce(spend_weekly.spend_rows_without_fx_rate, 0) as spend_rows_without_fx_rate,
        coalesce(spend_weekly.spend, 0) as spend,
        -- a paused network claims nothing; a source without the platform columns claims null
        case when spend_weekly.network is null then 0 else spend_weekly.platform_conversions end
            as platform_conversions,
        case when spend_weekly.network is null then 0 else spend_weekly.platform_conversion_value end
            as platform_conversion_value
    from weeks
    cross join networks
    left join spend_weekly
        on weeks.week_start = spend_weekly.week_start
            and networks.network = spend_weekly.network
),

week_totals as (
    select
        week_start,
        sum(spend) as total_spend,
        sum(platform_conversion_value) as total_platform_conversion_value
    from grid
    group by week_start
),

final as (
    select
        grid.week_start,
        grid.network,
        '{{ var('tiktok_reporting_currency') | upper }}' as reporting_currency,
        grid.spend,
        grid.platform_conversions,
        grid.platform_conversion_value,
        grid.platform_conversion_value / nullif(grid.spend, 0) as platform_roas,
        grid.spend / nullif(week_totals.total_spend, 0) as spend_share,
        grid.spend_rows,
        grid.spend_rows_without_fx_rate,
        week_days.days_with_spend,
        week_totals.total_spend,
        week_totals.total_platform_conversion_value,
        coalesce(revenue_weekly.blended_revenue, 0) as blended_revenue,
        coalesce(new_customers_weekly.new_customers, 0) as new_customers,
        coalesce(revenue_weekly.blended_revenue, 0) / nullif(week_totals.total_spend, 0) as mer,
        grid.platform_conversion_value / nullif(revenue_weekly.blended_revenue, 0) as platform_value_to_revenue
    from grid
    inner join week_totals
        on grid.week_start = week_totals.week_start
    inner join week_days
        on grid.week_start = week_days.week_start
    left join revenue_weekly
        on grid.week_start = revenue_weekly.week_start
    left join new_customers_weekly
        on grid.week_start = new_customers_weekly.week_start
)

select * from final
