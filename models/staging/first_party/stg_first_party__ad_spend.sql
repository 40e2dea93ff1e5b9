{#- Daily ad spend per network, campaign and targeted country, renamed and cast; network
    lowercased, country and currency uppercased. Empty (with the same columns) where the
    advertiser has no ad_spend table; the platform-reported columns are null where the table
    has none. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('ad_spend') }}
{%- endif %}
{%- set source_relation = source('first_party', 'ad_spend') %}
{%- set has_table = tiktok_outbox.source_relation_exists(source_relation) %}
{#- the optional columns the table has (all of them in a unit test's fixture, a CTE) -#}
{%- set is_fixture = source_relation.type == 'cte' %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) if has_table and not is_fixture else {} %}

with source as (
    {{ tiktok_outbox.optional_source(source_relation, [
        ('spend_date', 'date'),
        ('network', dbt.type_string()),
        ('campaign_id', dbt.type_string()),
        ('campaign_name', dbt.type_string()),
        ('country_code', dbt.type_string()),
        ('spend', 'decimal(18, 2)'),
        ('currency', dbt.type_string()),
        ('platform_conversions', dbt.type_int()),
        ('platform_conversion_value', 'decimal(18, 2)'),
    ]) }}
),

renamed as (
    select
        cast(spend_date as date) as spend_date,
        lower({{ tiktok_outbox.source_text('network') }}) as network,
        {{ tiktok_outbox.source_text('campaign_id') }} as campaign_id,
        {{ tiktok_outbox.source_text('campaign_name') }} as campaign_name,
        upper({{ tiktok_outbox.source_text('country_code') }}) as country_code,
        cast(spend as decimal(18, 2)) as spend,
        upper({{ tiktok_outbox.source_text('currency') }}) as currency,
        -- optional columns: null where the table has none
        {%- set every_column = is_fixture or not has_table %}
        cast(
            {{ 'platform_conversions' if every_column or 'platform_conversions' in column_types else 'null' }}
            as {{ dbt.type_int() }}
        ) as platform_conversions,
        cast(
            {{ 'platform_conversion_value' if every_column or 'platform_conversion_value' in column_types else 'null' }}
            as decimal(18, 2)
        ) as platform_conversion_value
    from source
)

select * from renamed
