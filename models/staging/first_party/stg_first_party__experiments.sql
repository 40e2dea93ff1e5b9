{#- The experiment register, renamed and cast, with its defaults filled in and readable_from
    (ended_at + maturity_days). Empty (with the same columns) where the advertiser
    has no experiments table. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('experiments') }}
{%- endif %}
{%- set source_relation = source('first_party', 'experiments') %}
{%- set present = tiktok_outbox.source_relation_exists(source_relation) %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) if present else {} %}

with source as (
    {{ tiktok_outbox.optional_source(source_relation, [
        ('experiment_id', dbt.type_string()),
        ('network', dbt.type_string()),
        ('business_model', dbt.type_string()),
        ('geo_level', dbt.type_string()),
        ('treatment_share', tiktok_outbox.type_double()),
        ('salt', dbt.type_string()),
        ('pre_period_started_at', dbt.type_timestamp()),
        ('started_at', dbt.type_timestamp()),
        ('ended_at', dbt.type_timestamp()),
        ('maturity_days', dbt.type_int()),
        ('planned_spend', dbt.type_numeric()),
        ('currency', dbt.type_string()),
    ]) }}
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
        coalesce(cast(maturity_days as {{ dbt.type_int() }}), {{ var('tiktok_experiment_maturity_days') | int }})
            as maturity_days,
        cast(planned_spend as {{ dbt.type_numeric() }}) as planned_spend,
        upper({{ tiktok_outbox.source_text('currency') }}) as currency
    from source
),

final as (
    select
        renamed.*,
        -- when every customer acquired in the window has matured: the readout reads it from then
        {{ dbt.dateadd('day', 'maturity_days', 'ended_at') }} as readable_from
    from renamed
)

select * from final
