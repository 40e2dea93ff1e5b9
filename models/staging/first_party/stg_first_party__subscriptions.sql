{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if var('tiktok_load_demo_data') | as_bool %}
-- depends_on: {{ ref('subscriptions') }}
{%- endif %}

with source as (
    select * from {{ source('first_party', 'subscriptions') }}
),

renamed as (
    select
        cast(subscription_id as {{ dbt.type_string() }}) as subscription_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        lower(trim(cast(plan as {{ dbt.type_string() }}))) as plan,
        cast(trial_started_at as {{ dbt.type_timestamp() }}) as trial_started_at,
        cast(subscribed_at as {{ dbt.type_timestamp() }}) as subscribed_at,
        cast(cancelled_at as {{ dbt.type_timestamp() }}) as cancelled_at,
        upper(nullif(trim(cast(currency as {{ dbt.type_string() }})), '')) as currency,
        cast(price as {{ dbt.type_numeric() }}) as price,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at
    from source
)

select * from renamed
