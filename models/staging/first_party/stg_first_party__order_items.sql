{#- Order lines, renamed and cast. Empty (with the same columns) where the advertiser has no
    order_items table: events then carry no contents. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('order_items') }}
{%- endif %}
{%- set source_relation = source('first_party', 'order_items') %}

with source as (
    {{ tiktok_outbox.optional_source(source_relation, [
        ('order_id', dbt.type_string()),
        ('line_number', dbt.type_int()),
        ('product_id', dbt.type_string()),
        ('product_name', dbt.type_string()),
        ('category', dbt.type_string()),
        ('quantity', dbt.type_int()),
        ('unit_price', tiktok_outbox.type_double()),
    ]) }}
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
