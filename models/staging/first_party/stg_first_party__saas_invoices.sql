{#- SaaS invoices, renamed and cast. Empty (with the same columns) where the advertiser has no
    saas_invoices table: SaaS revenue is then unobserved and calibration leaves SaaS customers
    out. -#}
{%- if tiktok_outbox.load_demo_data() %}
-- depends_on: {{ ref('saas_invoices') }}
{%- endif %}
{%- set source_relation = source('first_party', 'saas_invoices') %}
{%- set present = tiktok_outbox.source_relation_exists(source_relation) %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) if present else {} %}

with source as (
    {{ tiktok_outbox.optional_source(source_relation, [
        ('invoice_id', dbt.type_string()),
        ('signup_id', dbt.type_string()),
        ('customer_id', dbt.type_string()),
        ('paid_at', dbt.type_timestamp()),
        ('amount', dbt.type_numeric()),
        ('currency', dbt.type_string()),
        ('status', dbt.type_string()),
    ]) }}
),

renamed as (
    select
        cast(invoice_id as {{ dbt.type_string() }}) as invoice_id,
        cast(signup_id as {{ dbt.type_string() }}) as signup_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        {{ tiktok_outbox.source_timestamp_utc(column_types, 'paid_at') }} as paid_at,
        cast(amount as {{ dbt.type_numeric() }}) as amount,
        upper({{ tiktok_outbox.source_text('currency') }}) as currency,
        lower({{ tiktok_outbox.source_text('status') }}) as invoice_status
    from source
)

select * from renamed
