{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('subscriptions') }}
{%- endif %}
{#- Timestamps become UTC without zone (macro source_timestamp_utc), by the column types looked up once. -#}
{%- set source_relation = source('first_party', 'subscriptions') %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) %}

with source as (
    select * from {{ source_relation }}
),

renamed as (
    select
        cast(subscription_id as {{ dbt.type_string() }}) as subscription_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        lower({{ tiktok_outbox.trim_spaces('cast(plan as ' ~ dbt.type_string() ~ ')') }}) as plan,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'trial_started_at') }} as trial_started_at,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'subscribed_at') }} as subscribed_at,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'cancelled_at') }} as cancelled_at,
        upper({{ tiktok_outbox.source_text('currency') }}) as currency,
        cast(price as {{ dbt.type_numeric() }}) as price,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'updated_at') }} as updated_at
    from source
)

select * from renamed
