{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('app_events') }}
{%- endif %}
{#- Timestamps become UTC without zone (macro source_timestamp_utc), by the column types looked up once. -#}
{%- set source_relation = source('first_party', 'app_events') %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) %}

with source as (
    select * from {{ source_relation }}
),

renamed as (
    select
        cast(app_event_id as {{ dbt.type_string() }}) as app_event_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(subscription_id as {{ dbt.type_string() }}) as subscription_id,
        lower({{ tiktok_outbox.trim_spaces('cast(event_name as ' ~ dbt.type_string() ~ ')') }}) as event_name,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'occurred_at') }} as occurred_at,
        lower({{ tiktok_outbox.trim_spaces('cast(platform as ' ~ dbt.type_string() ~ ')') }}) as platform,
        {{ tiktok_outbox.source_text('ip') }} as ip,
        {{ tiktok_outbox.source_text('user_agent') }} as user_agent,
        -- optional columns (README, "Match keys"): null where the table has none
        {{ tiktok_outbox.optional_source_text(column_types, 'idfa') }} as idfa,
        {{ tiktok_outbox.optional_source_text(column_types, 'idfv') }} as idfv,
        {{ tiktok_outbox.optional_source_text(column_types, 'gaid') }} as gaid,
        {{ tiktok_outbox.optional_source_text(column_types, 'att_status') }} as att_status
    from source
)

select * from renamed
