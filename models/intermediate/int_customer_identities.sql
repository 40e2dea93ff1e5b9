{#- Incremental (delete+insert on customer_id): a build normalises and hashes again exactly the
    customers whose latest source row differs from the one held, or who are not held yet, whatever
    the row's timestamps say (late rows, null timestamps, an empty first build). A cheap MD5
    fingerprint of each source row's raw inputs decides; a post-hook drops the customers that left
    the source (an incremental build only: where the model is a table, on Spark, it has none). An incremental build so ends equal to a full refresh. A change to seed
    country_calling_codes needs `--full-refresh`.

    One row per customer with hashed match keys, except the customers who asked to be erased
    (int_customer_privacy), whose rows a build deletes. Normalisation and hashing happen in one step so
    that no raw or merely normalised email, phone, name or zip code leaves this model. City, state,
    country and locale are sent plain, as TikTok takes them (README, "Match keys"). -#}
{{ config(
    on_schema_change='append_new_columns',
    post_hook="{% if is_incremental() %}delete from {{ this }} where customer_id not in (select customer_id from {{ ref('stg_first_party__customers') }} where customer_id is not null) or customer_id in (select customer_id from {{ ref('int_customer_privacy') }} where is_erased){% endif %}",
) }}
{%- set default_country = var('tiktok_default_country_code') -%}
{%- set default_country_sql = (
    "'" ~ default_country ~ "'" if default_country else "cast(null as " ~ dbt.type_string() ~ ")"
) -%}
{%- set fingerprint_parts = [
    'email', 'phone', 'country_code',
    'cast(created_at as ' ~ dbt.type_string() ~ ')', 'cast(updated_at as ' ~ dbt.type_string() ~ ')',
    default_country_sql, 'first_name', 'last_name', 'city', 'state', 'zip_code', 'locale'] -%}
{%- set fingerprint_input -%}
{%- for part in fingerprint_parts -%}
coalesce(cast(length({{ part }}) as {{ dbt.type_string() }}) || ':' || {{ part }}, '~'){% if not loop.last %} || {% endif %}
{%- endfor -%}
{%- endset -%}
{#- A table built before the fingerprint existed has no such column: then every customer is redone
    (and on_schema_change adds the column). -#}
{%- set held_has_fingerprint = is_incremental()
    and 'source_fingerprint' in (adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list) -%}

with customers as (
    -- a customer who asked to be forgotten is not hashed (README, "Consent and erasure")
    select * from {{ ref('stg_first_party__customers') }}
    where customer_id is not null
        and customer_id not in (
            select privacy.customer_id from {{ ref('int_customer_privacy') }} as privacy
            where privacy.is_erased
        )
),

calling_codes as (
    select * from {{ ref('country_calling_codes') }}
),

fingerprinted as (
    -- every input of a customer's hashed row, each part length-prefixed ('~' when null) so that
    -- no two different rows concatenate to the same text; the default country is an input too
    select
        customers.*,
        {{ dbt.hash(fingerprint_input) }} as source_fingerprint
    from customers
),

latest_customer_row as (
    -- a customer key loaded twice keeps its most recently updated row; rows without timestamps
    -- come last, and the fingerprint breaks remaining ties the same way on every engine
    select *
    from (
        select
            fingerprinted.*,
            row_number() over (
                partition by customer_id
                order by updated_at desc nulls last, created_at desc nulls last, source_fingerprint asc
            ) as row_rank
        from fingerprinted
    ) as ranked
    where row_rank = 1
),

changed as (
    select latest_customer_row.*
    from latest_customer_row
    {% if held_has_fingerprint %}
    -- only customers new or changed since the last build are normalised and hashed again
    where not exists (
            select 1 from {{ this }} as held
            where held.customer_id = latest_customer_row.customer_id
                and held.source_fingerprint = latest_customer_row.source_fingerprint
        )
    {% endif %}
),

prepared as (
    select
        c.customer_id,
        c.source_fingerprint,
        coalesce(c.updated_at, c.created_at) as source_updated_at,
        coalesce(c.country_code, {{ default_country_sql }}) as country_code,
        {{ tiktok_outbox.normalize_email('c.email') }} as email_normalized,
        {{ tiktok_outbox.trim_whitespace('c.email') }} is not null as has_email_input,
        {{ tiktok_outbox.phone_compact('c.phone') }} as phone_compact,
        {{ tiktok_outbox.normalize_external_id('c.customer_id') }} as external_id_normalized,
        {{ tiktok_outbox.normalize_hashed_text('c.first_name') }} as first_name_normalized,
        {{ tiktok_outbox.normalize_hashed_text('c.last_name') }} as last_name_normalized,
        {{ tiktok_outbox.normalize_hashed_text('c.zip_code') }} as zip_code_normalized,
        {{ tiktok_outbox.normalize_place('c.city') }} as city,
        {{ tiktok_outbox.normalize_place('c.state') }} as state,
        {{ tiktok_outbox.normalize_locale('c.locale') }} as locale
    from changed as c
),

normalized as (
    select
        prepared.customer_id,
        prepared.source_fingerprint,
        prepared.source_updated_at,
        prepared.country_code,
        prepared.email_normalized,
        prepared.has_email_input,
        prepared.phone_compact is not null and prepared.phone_compact <> '' as has_phone_input,
        {{ tiktok_outbox.phone_e164(
            'prepared.phone_compact', 'cc.calling_code', 'cc.trunk_prefix',
            'cc.nsn_min_length', 'cc.nsn_max_length') }} as phone_normalized,
        prepared.external_id_normalized,
        prepared.first_name_normalized,
        prepared.last_name_normalized,
        prepared.zip_code_normalized,
        prepared.city,
        prepared.state,
        prepared.locale
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
        end as phone_status,
        source_fingerprint,
        {{ tiktok_outbox.hash_identifier('first_name_normalized') }} as first_name_sha256,
        {{ tiktok_outbox.hash_identifier('last_name_normalized') }} as last_name_sha256,
        {{ tiktok_outbox.hash_identifier('zip_code_normalized') }} as zip_code_sha256,
        city,
        state,
        {{ tiktok_outbox.normalize_place('country_code') }} as country,
        locale
    from normalized
)

select * from final
