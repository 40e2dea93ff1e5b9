{#- The experiment register, renamed and cast. Empty (with the same columns) where the advertiser
    has no experiments table. -#}
{%- if var('tiktok_load_demo_data') | as_bool %}
-- depends_on: {{ ref('experiments') }}
{%- endif %}
{%- set source_relation = source('first_party', 'experiments') %}
{%- set present = tiktok_outbox.source_relation_exists(source_relation) %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) if present else {} %}

with source as (
    {% if present %}
    select * from {{ source_relation }}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as experiment_id,
        cast(null as {{ dbt.type_string() }}) as network,
        cast(null as {{ dbt.type_string() }}) as business_model,
        cast(null as {{ dbt.type_string() }}) as geo_level,
        cast(null as {{ tiktok_outbox.type_double() }}) as treatment_share,
        cast(null as {{ dbt.type_string() }}) as salt,
        cast(null as {{ dbt.type_timestamp() }}) as pre_period_started_at,
        cast(null as {{ dbt.type_timestamp() }}) as started_at,
        cast(null as {{ dbt.type_timestamp() }}) as ended_at,
        cast(null as {{ dbt.type_int() }}) as maturity_days,
        cast(null as {{ dbt.type_numeric() }}) as planned_spend,
        cast(null as {{ dbt.type_string() }}) as currency
    where 1 = 0
    {% endif %}
),

renamed as (
    select
        {{ tiktok_outbox.source_text('experiment_id') }} as experiment_id,
        lower({{ tiktok_outbox.source_text('network') }}) as network,
        lower({{ tiktok_outbox.source_text('business_model') }}) as business_model,
        coalesce(lower({{ tiktok_outbox.source_text('geo_level') }}), 'country') as geo_level,
        coalesce(cast(treatment_share as {{ tiktok_outbox.type_double() }}), 0.5) as treatment_share,
        coalesce({{ tiktok_outbox.source_text('salt') }}, {{ tiktok_outbox.source_text('experiment_id') }}) as salt,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'pre_period_started_at') }} as pre_period_started_at,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'started_at') }} as started_at,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'ended_at') }} as ended_at,
        coalesce(cast(maturity_days as {{ dbt.type_int() }}), {{ var('tiktok_experiment_maturity_days') | int }}) as maturity_days,
        cast(planned_spend as {{ dbt.type_numeric() }}) as planned_spend,
        upper({{ tiktok_outbox.source_text('currency') }}) as currency
    from source
)

select * from renamed
