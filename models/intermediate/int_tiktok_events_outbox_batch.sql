{#- The events this build appends to tiktok_events_outbox, exactly as they will be appended: the
    candidates that are ready (no exclusion, not waiting), not in the outbox yet and still young
    enough to send, cast to the outbox contract's types. A table rebuilt by every build: the
    tests that guard the outbox run on it (the gates), so a failing test stops this build's
    append instead of leaving a bad row in the outbox's history for every later build to trip on.
    README, "Late and corrected data". -#}

with candidates as (
    select * from {{ ref('int_tiktok_events_candidates') }}
    where exclusion_reason is null
        and wait_reason is null
        and converted_at >= {{ tiktok_outbox.sendable_since() }}
),

new_events as (
    select candidates.*
    from candidates
    where not {{ tiktok_outbox.is_sent('candidates.conversion_id') }}
),

final as (
    -- cast to exactly the contract's types (type_varchar: varchar, not text, on PostgreSQL), so an
    -- incremental run sees no type change
    select
        cast(event_id as {{ tiktok_outbox.type_varchar() }}) as event_id,
        cast(event as {{ tiktok_outbox.type_varchar() }}) as event,
        cast(event_source as {{ tiktok_outbox.type_varchar() }}) as event_source,
        cast(event_source_id as {{ tiktok_outbox.type_varchar() }}) as event_source_id,
        cast(event_time as {{ dbt.type_bigint() }}) as event_time,
        cast(email_sha256 as {{ tiktok_outbox.type_varchar() }}) as email_sha256,
        cast(phone_sha256 as {{ tiktok_outbox.type_varchar() }}) as phone_sha256,
        cast(external_id_sha256 as {{ tiktok_outbox.type_varchar() }}) as external_id_sha256,
        cast(ttclid as {{ tiktok_outbox.type_varchar() }}) as ttclid,
        cast(ttp as {{ tiktok_outbox.type_varchar() }}) as ttp,
        cast(ip as {{ tiktok_outbox.type_varchar() }}) as ip,
        cast(user_agent as {{ tiktok_outbox.type_varchar() }}) as user_agent,
        cast(page_url as {{ tiktok_outbox.type_varchar() }}) as page_url,
        cast(value as decimal(18, 2)) as value,
        cast(currency as {{ tiktok_outbox.type_varchar() }}) as currency,
        cast(order_id as {{ tiktok_outbox.type_varchar() }}) as order_id,
        cast(experiment_cell as {{ tiktok_outbox.type_varchar() }}) as experiment_cell,
        cast(predicted_ltv as decimal(18, 2)) as predicted_ltv,
        cast(predicted_ltv_currency as {{ tiktok_outbox.type_varchar() }}) as predicted_ltv_currency,
        cast(model_version as {{ tiktok_outbox.type_varchar() }}) as model_version,
        cast(scored_at as {{ dbt.type_timestamp() }}) as scored_at,
        cast(calibration_factor as {{ tiktok_outbox.type_double() }}) as calibration_factor,
        cast(is_value_capped as {{ dbt.type_boolean() }}) as is_value_capped,
        cast(value_basis as {{ tiktok_outbox.type_varchar() }}) as value_basis,
        cast(observed_value as decimal(18, 2)) as observed_value,
        cast(is_value_anchor as {{ dbt.type_boolean() }}) as is_value_anchor,
        cast(canonical_event as {{ tiktok_outbox.type_varchar() }}) as canonical_event,
        cast(business_model as {{ tiktok_outbox.type_varchar() }}) as business_model,
        cast(conversion_id as {{ tiktok_outbox.type_varchar() }}) as conversion_id,
        cast(converted_at as {{ dbt.type_timestamp() }}) as converted_at,
        cast({{ tiktok_outbox.tiktok_as_of() }} as {{ dbt.type_timestamp() }}) as outboxed_at,
        cast({{ tiktok_outbox.round_money('blended_value') }} as decimal(18, 2)) as uncapped_value,
        cast(limited_data_use as {{ dbt.type_boolean() }}) as limited_data_use,
        cast(att_status as {{ tiktok_outbox.type_varchar() }}) as att_status,
        cast(idfa as {{ tiktok_outbox.type_varchar() }}) as idfa,
        cast(idfv as {{ tiktok_outbox.type_varchar() }}) as idfv,
        cast(gaid as {{ tiktok_outbox.type_varchar() }}) as gaid,
        cast(first_name_sha256 as {{ tiktok_outbox.type_varchar() }}) as first_name_sha256,
        cast(last_name_sha256 as {{ tiktok_outbox.type_varchar() }}) as last_name_sha256,
        cast(zip_code_sha256 as {{ tiktok_outbox.type_varchar() }}) as zip_code_sha256,
        cast(city as {{ tiktok_outbox.type_varchar() }}) as city,
        cast(state as {{ tiktok_outbox.type_varchar() }}) as state,
        cast(country as {{ tiktok_outbox.type_varchar() }}) as country,
        cast(locale as {{ tiktok_outbox.type_varchar() }}) as locale,
        -- set only by `dbt run-operation tiktok_erase_customers` (README, "Consent and erasure")
        cast(null as {{ dbt.type_boolean() }}) as is_erased,
        cast(properties_predicted_ltv as decimal(18, 2)) as properties_predicted_ltv,
        cast(contents as {{ tiktok_outbox.type_varchar() }}) as contents,
        cast(content_type as {{ tiktok_outbox.type_varchar() }}) as content_type,
        cast(num_items as {{ dbt.type_bigint() }}) as num_items
    from new_events
)

select * from final
