{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if var('tiktok_load_demo_data') | as_bool %}
-- depends_on: {{ ref('customers') }}
{%- endif %}

with source as (
    select * from {{ source('first_party', 'customers') }}
),

renamed as (
    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(email as {{ dbt.type_string() }}) as email,
        cast(phone as {{ dbt.type_string() }}) as phone,
        upper(nullif(trim(cast(country_code as {{ dbt.type_string() }})), '')) as country_code,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at
    from source
)

select * from renamed
