{#- Order lines, renamed and cast. Empty (with the same columns) where the advertiser has no
    order_items table: events then carry no contents. -#}
{%- if var('tiktok_load_demo_data') | as_bool %}
-- depends_on: {{ ref('order_items') }}
{%- endif %}
{%- set source_relation = source('first_party', 'order_items') %}

with source as (
    {% if tiktok_outbox.source_relation_exists(source_relation) %}
    select * from {{ source_relation }}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_int() }}) as line_number,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ dbt.type_string() }}) as product_name,
        cast(null as {{ dbt.type_string() }}) as category,
        cast(null as {{ dbt.type_int() }}) as quantity,
        cast(null as {{ tiktok_outbox.type_double() }}) as unit_price
    where 1 = 0
    {% endif %}
),

renamed as (
    select
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(line_number as {{ dbt.type_int() }}) as line_number,
        {{ tiktok_outbox.source_text('product_id') }} as product_id,
        {{ tiktok_outbox.source_text('product_name') }} as product_name,
        {{ tiktok_outbox.source_text('category') }} as category,
        cast(quantity as {{ dbt.type_int() }}) as quantity,
        cast(unit_price as decimal(18, 2)) as unit_price
    from source
)

select * from renamed
