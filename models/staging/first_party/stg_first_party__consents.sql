{#- Consent decisions, renamed and cast; purpose and status trimmed and lowercased. Empty (with
    the same columns) where the advertiser has no consents table: every customer then follows
    var tiktok_consent_default (README, "Consent and erasure"). -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('consents') }}
{%- endif %}
{%- set source_relation = source('first_party', 'consents') %}
{%- set present = tiktok_outbox.source_relation_exists(source_relation) %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) if present else {} %}

with source as (
    {{ tiktok_outbox.optional_source(source_relation, [
        ('customer_id', dbt.type_string()),
        ('purpose', dbt.type_string()),
        ('status', dbt.type_string()),
        ('recorded_at', dbt.type_timestamp()),
    ]) }}
),

renamed as (
    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        lower({{ tiktok_outbox.source_text('purpose') }}) as purpose,
        lower({{ tiktok_outbox.source_text('status') }}) as status,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'recorded_at') }} as recorded_at
    from source
)

select * from renamed
