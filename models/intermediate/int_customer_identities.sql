{#- Incremental (delete+insert on customer_id): a build re-hashes only customers whose row changed
    since the last one.

    One row per customer with hashed match keys. Normalisation and hashing happen in one step so
    that no raw or merely normalised email or phone leaves this model. -#}
{%- set default_country = var('tiktok_default_country_code') -%}

with customers as (
    select * from {{ ref('stg_first_party__customers') }}
),

calling_codes as (
    select * from {{ ref('country_calling_codes') }}
),

latest_customer_row as (
    -- a customer key loaded twice keeps its most recently updated row
    select *
    from (
        select
            customers.*,
            row_number() over (
                partition by customer_id order by updated_at desc, created_at desc
            ) as row_rank
        from customers
        where customer_id is not null
        {% if is_incremental() %}
        -- only customers changed since the last build are normalised and hashed again
          and customer_id in (
              select customer_id from customers
              where coalesce(updated_at, created_at) >= (select max(source_updated_at) from {{ this }})
          )
        {% endif %}
    ) as ranked
    where row_rank = 1
),

prepared as (
    select
        c.customer_id,
        coalesce(c.updated_at, c.created_at) as source_updated_at,
        coalesce(c.country_code, {{ "'" ~ default_country ~ "'" if default_country else "cast(null as " ~ dbt.type_string() ~ ")" }}) as country_code,
        {{ tiktok_outbox.normalize_email('c.email') }} as email_normalized,
        {{ tiktok_outbox.trim_whitespace('c.email') }} is not null as has_email_input,
        {{ tiktok_outbox.phone_compact('c.phone') }} as phone_compact,
        {{ tiktok_outbox.normalize_external_id('c.customer_id') }} as external_id_normalized
    from latest_customer_row as c
),

normalized as (
    select
        prepared.customer_id,
        prepared.source_updated_at,
        prepared.country_code,
        prepared.email_normalized,
        prepared.has_email_input,
        prepared.phone_compact is not null and prepared.phone_compact <> '' as has_phone_input,
        {{ tiktok_outbox.phone_e164(
            'prepared.phone_compact', 'cc.calling_code', 'cc.trunk_prefix',
            'cc.nsn_min_length', 'cc.nsn_max_length') }} as phone_normalized,
        prepared.external_id_normalized
    from prepared
    left join calling_codes as cc
        on prepared.country_code = cc.country_code
),

final as (
    select
        customer_id,
        country_code,
        source_updated_at,
        {{ tiktok_outbox.hash_identifier('email_normalized') }} as email_sha256,
        {{ tiktok_outbox.hash_identifier('phone_normalized') }} as phone_sha256,
        {{ tiktok_outbox.hash_identifier('external_id_normalized') }} as external_id_sha256,
        case
            when {{ tiktok_outbox.is_sha256_hex('email_normalized') }} then 'prehashed'
            when email_normalized is not null then 'valid'
            when has_email_input then 'invalid'
            else 'missing'
        end as email_status,
        case
            when {{ tiktok_outbox.is_sha256_hex('phone_normalized') }} then 'prehashed'
            when phone_normalized is not null then 'valid'
            when has_phone_input then 'invalid'
            else 'missing'
        end as phone_status
    from normalized
)

select * from final
