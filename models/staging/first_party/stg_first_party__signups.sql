{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if var('tiktok_load_demo_data') | as_bool %}
-- depends_on: {{ ref('signups') }}
{%- endif %}

with source as (
    select * from {{ source('first_party', 'signups') }}
),

renamed as (
    select
        cast(signup_id as {{ dbt.type_string() }}) as signup_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(signed_up_at as {{ dbt.type_timestamp() }}) as signed_up_at,
        lower(trim(cast(plan as {{ dbt.type_string() }}))) as plan,
        cast(activated_at as {{ dbt.type_timestamp() }}) as activated_at,
        cast(seats as {{ dbt.type_int() }}) as seats,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at
    from source
)

select * from renamed
