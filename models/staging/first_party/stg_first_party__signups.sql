{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('signups') }}
{%- endif %}
{#- Timestamps become UTC without zone (macro source_timestamp_utc), by the column types looked up once. -#}
{%- set source_relation = source('first_party', 'signups') %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) %}

with source as (
    select * from {{ source_relation }}
),

renamed as (
    select
        cast(signup_id as {{ dbt.type_string() }}) as signup_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'signed_up_at') }} as signed_up_at,
        lower({{ tiktok_outbox.trim_spaces('cast(plan as ' ~ dbt.type_string() ~ ')') }}) as plan,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'activated_at') }} as activated_at,
        cast(seats as {{ dbt.type_int() }}) as seats,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'updated_at') }} as updated_at
    from source
)

select * from renamed
