{#- Event-source routing rows, renamed and cast, keys trimmed and lowercased ('*' for any; country
    codes uppercased). Empty (with the same columns) where the advertiser has no event_sources
    table: every event then takes its source's id from the environment. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('event_sources') }}
{%- endif %}
{%- set source_relation = source('first_party', 'event_sources') %}

with source as (
    {{ tiktok_outbox.optional_source(source_relation, [
        ('event_source', dbt.type_string()),
        ('platform', dbt.type_string()),
        ('country_code', dbt.type_string()),
        ('event_source_id', dbt.type_string()),
    ]) }}
),

renamed as (
    select
        lower({{ tiktok_outbox.source_text('event_source') }}) as event_source,
        coalesce(lower({{ tiktok_outbox.source_text('platform') }}), '*') as platform,
        coalesce(upper({{ tiktok_outbox.source_text('country_code') }}), '*') as country_code,
        {{ tiktok_outbox.source_text('event_source_id') }} as event_source_id
    from source
)

select * from renamed
