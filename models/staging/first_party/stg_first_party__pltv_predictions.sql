{#- With demo data on, the seed is this source's table: the edge makes dbt load it first. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('pltv_predictions') }}
{%- endif %}
{#- Timestamps become UTC without zone (macro source_timestamp_utc), by the column types looked up once. -#}
{%- set source_relation = source('first_party', 'pltv_predictions') %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) %}

with source as (
    select * from {{ source_relation }}
),

renamed as (
    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(predicted_ltv as {{ tiktok_outbox.type_double() }}) as predicted_ltv,
        upper({{ tiktok_outbox.source_text('currency') }}) as currency,
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'scored_at') }} as scored_at,
        cast(horizon_days as {{ dbt.type_int() }}) as horizon_days
    from source
)

select * from renamed
