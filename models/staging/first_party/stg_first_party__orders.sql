{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('orders') }}
{%- endif %}
{#- Timestamps become UTC without zone (macro source_timestamp_utc), by the column types looked up once. -#}
{%- set source_relation = source('first_party', 'orders') %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) %}

with source as (
    select * from {{ source_relation }}
),

renamed as (
    select
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'ordered_at') }} as ordered_at,
        lower({{ tiktok_outbox.trim_spaces('cast(status as ' ~ dbt.type_string() ~ ')') }}) as order_status,
        upper({{ tiktok_outbox.source_text('currency') }}) as currency,
        cast(gross_revenue as {{ dbt.type_numeric() }}) as gross_revenue,
        cast(discount_amount as {{ dbt.type_numeric() }}) as discount_amount,
        cast(net_revenue as {{ dbt.type_numeric() }}) as net_revenue,
        cast(coalesce(refunded_amount, 0) as {{ dbt.type_numeric() }}) as refunded_amount,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'updated_at') }} as updated_at
    from source
)

select * from renamed
