{#- SaaS invoices, renamed and cast. Empty (with the same columns) where the advertiser has no
    saas_invoices table: SaaS revenue is then unobserved and calibration leaves SaaS customers
    out. -#}
{%- if var('tiktok_load_demo_data') | as_bool %}
-- depends_on: {{ ref('saas_invoices') }}
{%- endif %}
{%- set source_relation = source('first_party', 'saas_invoices') %}
{%- set present = tiktok_outbox.source_relation_exists(source_relation) %}
{%- set column_types = tiktok_outbox.source_column_types(source_relation) if present else {} %}

with source as (
    {% if present %}
    select * from {{ source_relation }}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as invoice_id,
        cast(null as {{ dbt.type_string() }}) as signup_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_timestamp() }}) as paid_at,
        cast(null as {{ dbt.type_numeric() }}) as amount,
        cast(null as {{ dbt.type_string() }}) as currency,
        cast(null as {{ dbt.type_string() }}) as status
    where 1 = 0
    {% endif %}
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
