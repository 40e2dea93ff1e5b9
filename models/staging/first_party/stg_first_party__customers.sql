{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('customers') }}
{%- endif %}
{#- Timestamps become UTC without zone (macro source_timestamp_utc), by the column types looked up once. -#}
{%- set source_relation = source('first_party', 'customers') %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) %}

with source as (
    select * from {{ source_relation }}
),

renamed as (
    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(email as {{ dbt.type_string() }}) as email,
        cast(phone as {{ dbt.type_string() }}) as phone,
        upper({{ tiktok_outbox.source_text('country_code') }}) as country_code,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'created_at') }} as created_at,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'updated_at') }} as updated_at,
        -- optional columns (README, "Match keys"): null where the table has none
        {{ tiktok_outbox.optional_source_text(column_types, 'first_name') }} as first_name,
        {{ tiktok_outbox.optional_source_text(column_types, 'last_name') }} as last_name,
        {{ tiktok_outbox.optional_source_text(column_types, 'city') }} as city,
        {{ tiktok_outbox.optional_source_text(column_types, 'state') }} as state,
        {{ tiktok_outbox.optional_source_text(column_types, 'zip_code') }} as zip_code,
        {{ tiktok_outbox.optional_source_text(column_types, 'locale') }} as locale
    from source
)

select * from renamed
