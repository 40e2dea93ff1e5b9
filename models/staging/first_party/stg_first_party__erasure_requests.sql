{#- Erasure requests, renamed and cast. Empty (with the same columns) where the advertiser has no
    erasure_requests table. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('erasure_requests') }}
{%- endif %}
{%- set source_relation = source('first_party', 'erasure_requests') %}
{%- set present = tiktok_outbox.source_relation_exists(source_relation) %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) if present else {} %}

with source as (
    {{ tiktok_outbox.optional_source(source_relation, [
        ('customer_id', dbt.type_string()),
        ('requested_at', dbt.type_timestamp()),
    ]) }}
),

renamed as (
    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'requested_at') }} as requested_at
    from source
)

select * from renamed
