{#- Realised revenue, one row per payment, in the reporting currency: ecommerce orders (net
    revenue less refunds; cancelled orders pay nothing), subscription billing periods (monthly
    every 30 days, annual every 365 days, from subscribed_at until cancelled or the build) and paid
    SaaS invoices (optional source saas_invoices). The readout and calibration models compare
    predictions and cells against it. -#}
{#- a subscription's n-th renewal: a year or 30 days per period after it started -#}
{%- set paid_at = dbt.dateadd(
    'day',
    "period_numbers.period_number * case when subscriptions.plan = 'annual' then 365 else 30 end",
    'subscriptions.subscribed_at',
) %}

with orders as (
    select * from {{ ref('stg_first_party__orders') }}
),

subscriptions as (
    select * from {{ ref('stg_first_party__subscriptions') }}
),

invoices as (
    select * from {{ ref('stg_first_party__saas_invoices') }}
),

fx as (
    select * from {{ ref('int_fx_to_reporting') }}
),

digits as (
    {% for d in range(10) %}
    select {{ d }} as digit{% if not loop.last %}
    union all
    {% endif %}{% endfor %}
),

period_numbers as (
    -- billing periods 0..199: 16 years of monthly periods
    select tens.digit * 10 + ones.digit + hundreds.digit * 100 as period_number
    from digits as ones
    cross join digits as tens
    cross join (
        select digit from digits
        where digit < 2
    ) as hundreds
),

order_payments as (
    select
        'order:' || order_id as payment_id,
        customer_id,
        'ecommerce' as business_model,
        ordered_at as paid_at,
        cast(net_revenue - refunded_amount as {{ tiktok_outbox.type_double() }}) as amount,
        currency
    from orders
    where customer_id is not null
        and order_status <> 'cancelled'
        and ordered_at <= {{ tiktok_outbox.tiktok_as_of() }}
),

subscription_payments as (
    select
        'subscription:'
        || subscriptions.subscription_id
        || ':'
        || cast(period_numbers.period_number as {{ dbt.type_string() }}) as payment_id,
        subscriptions.customer_id,
        'subscription_app' as business_model,
        {{ paid_at }} as paid_at,
        cast(subscriptions.price as {{ tiktok_outbox.type_double() }}) as amount,
        subscriptions.currency
    from subscriptions
    cross join period_numbers
    where subscriptions.subscribed_at is not null
        and subscriptions.customer_id is not null
        and {{ paid_at }} <= least(
            coalesce(subscriptions.cancelled_at, {{ tiktok_outbox.tiktok_as_of() }}), {{ tiktok_outbox.tiktok_as_of() }}
        )
),

invoice_payments as (
    select
        'invoice:' || invoice_id as payment_id,
        customer_id,
        'saas' as business_model,
        paid_at,
        cast(amount as {{ tiktok_outbox.type_double() }}) as amount,
        currency
    from invoices
    where invoice_status = 'paid'
        and invoice_id is not null
        and customer_id is not null
        and paid_at <= {{ tiktok_outbox.tiktok_as_of() }}
),

payments as (
    select * from order_payments
    union all
    select * from subscription_payments
    union all
    select * from invoice_payments
),

final as (
    select
        payments.payment_id,
        payments.customer_id,
        payments.business_model,
        payments.paid_at,
        payments.amount * fx.to_reporting as amount_reporting
    from payments
    inner join fx
        on payments.currency = fx.currency_code
)

select * from final
