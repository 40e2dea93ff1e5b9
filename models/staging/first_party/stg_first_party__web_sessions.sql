{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('web_sessions') }}
{%- endif %}
{#- Timestamps become UTC without zone (macro source_timestamp_utc), by the column types looked up once. -#}
{%- set source_relation = source('first_party', 'web_sessions') %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) %}

with source as (
    select * from {{ source_relation }}
),

renamed as (
    select
        cast(session_id as {{ dbt.type_string() }}) as session_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'started_at') }} as started_at,
        {{ tiktok_outbox.source_text('ttclid') }} as ttclid,
        {{ tiktok_outbox.source_text('ttp') }} as ttp,
        {{ tiktok_outbox.source_text('ip') }} as ip,
        {{ tiktok_outbox.source_text('user_agent') }} as user_agent,
        {{ tiktok_outbox.source_text('page_url') }} as page_url,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(signup_id as {{ dbt.type_string() }}) as signup_id,
        {{ tiktok_outbox.source_text('pixel_event_id') }} as pixel_event_id
    from source
)

select * from renamed
