{#- The outbox `sender push` reads. Append-only: a build adds candidates that passed every check
    and whose conversion (and event key) is not here yet; it never rewrites a row. A conversion
    that is already here is never added again, even if its event_id or event name changed later
    (a changed id would make TikTok count it twice). -#}

with candidates as (
    select * from {{ ref('int_tiktok_events_candidates') }}
    where exclusion_reason is null
),

new_events as (
    select candidates.*
    from candidates
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as existing
        where existing.conversion_id = candidates.conversion_id
    )
    and not exists (
        select 1 from {{ this }} as existing
        where existing.event_source_id = candidates.event_source_id
          and existing.event = candidates.event
          and existing.event_id = candidates.event_id
    )
    {% endif %}
),

final as (
    -- cast to exactly the contract's types (varchar, not the adapter's default string type, which
    -- is text on PostgreSQL), so an incremental run sees no type change
    select
        cast(event_id as varchar) as event_id,
        cast(event as varchar) as event,
        cast(event_source as varchar) as event_source,
        cast(event_source_id as varchar) as event_source_id,
        cast(event_time as {{ dbt.type_bigint() }}) as event_time,
        cast(email_sha256 as varchar) as email_sha256,
        cast(phone_sha256 as varchar) as phone_sha256,
        cast(external_id_sha256 as varchar) as external_id_sha256,
        cast(ttclid as varchar) as ttclid,
        cast(ttp as varchar) as ttp,
        cast(ip as varchar) as ip,
        cast(user_agent as varchar) as user_agent,
        cast(page_url as varchar) as page_url,
        cast(value as decimal(18, 2)) as value,
        cast(currency as varchar) as currency,
        cast(order_id as varchar) as order_id,
        cast(experiment_cell as varchar) as experiment_cell,
        cast(predicted_ltv as decimal(18, 2)) as predicted_ltv,
        cast(predicted_ltv_currency as varchar) as predicted_ltv_currency,
        cast(model_version as varchar) as model_version,
        cast(scored_at as {{ dbt.type_timestamp() }}) as scored_at,
        cast(calibration_factor as {{ tiktok_outbox.type_double() }}) as calibration_factor,
        cast(is_value_capped as {{ dbt.type_boolean() }}) as is_value_capped,
        cast(value_basis as varchar) as value_basis,
        cast(observed_value as decimal(18, 2)) as observed_value,
        cast(is_value_anchor as {{ dbt.type_boolean() }}) as is_value_anchor,
        cast(canonical_event as varchar) as canonical_event,
        cast(business_model as varchar) as business_model,
        cast(conversion_id as varchar) as conversion_id,
        cast(converted_at as {{ dbt.type_timestamp() }}) as converted_at,
        cast({{ tiktok_outbox.tiktok_as_of() }} as {{ dbt.type_timestamp() }}) as outboxed_at
    from new_events
)

select * from final
