{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if var('tiktok_load_demo_data') | as_bool %}
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
        nullif(trim(cast(ttclid as {{ dbt.type_string() }})), '') as ttclid,
        nullif(trim(cast(ttp as {{ dbt.type_string() }})), '') as ttp,
        nullif(trim(cast(ip as {{ dbt.type_string() }})), '') as ip,
        nullif(trim(cast(user_agent as {{ dbt.type_string() }})), '') as user_agent,
        nullif(trim(cast(page_url as {{ dbt.type_string() }})), '') as page_url,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(signup_id as {{ dbt.type_string() }}) as signup_id,
        nullif(trim(cast(pixel_event_id as {{ dbt.type_string() }})), '') as pixel_event_id
    from source
)

select * from renamed
