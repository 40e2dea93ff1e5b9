{#- Delivery receipts written by `sender push`, one row per event per attempt. Empty (with the
    same columns) until the first push has created the table. -#}
{%- set receipts = source('tiktok_delivery', 'tiktok_delivery_receipts') -%}
{%- set exists = tiktok_outbox.source_relation_exists(receipts) -%}
{#- row_fingerprint came with the receipts of null-key outbox rows: a receipts table written by
    an earlier sender lacks it until the next push adds it. -#}
{%- set has_fingerprint = exists and 'row_fingerprint' in tiktok_outbox.source_column_types(receipts) -%}

with source as (
    {% if exists %}
    select
        *{% if not has_fingerprint %},
        cast(null as {{ dbt.type_string() }}) as row_fingerprint{% endif %}
    from {{ receipts }}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as receipt_id,
        cast(null as {{ dbt.type_string() }}) as run_id,
        cast(null as {{ dbt.type_string() }}) as event_id,
        cast(null as {{ dbt.type_string() }}) as event,
        cast(null as {{ dbt.type_bigint() }}) as event_time,
        cast(null as {{ dbt.type_string() }}) as status,
        cast(null as {{ dbt.type_int() }}) as attempt,
        cast(null as {{ dbt.type_int() }}) as http_status,
        cast(null as {{ dbt.type_int() }}) as api_code,
        cast(null as {{ dbt.type_string() }}) as api_message,
        cast(null as {{ dbt.type_string() }}) as request_id,
        cast(null as {{ dbt.type_string() }}) as test_event_code,
        cast(null as {{ dbt.type_timestamp() }}) as sent_at,
        cast(null as {{ dbt.type_timestamp() }}) as acknowledged_at,
        cast(null as {{ dbt.type_string() }}) as payload_sha256,
        cast(null as {{ dbt.type_string() }}) as experiment_cell,
        cast(null as {{ dbt.type_string() }}) as sender_version,
        cast(null as {{ dbt.type_string() }}) as event_source_id,
        cast(null as {{ dbt.type_string() }}) as event_source,
        cast(null as {{ dbt.type_string() }}) as row_fingerprint
    where 1 = 0
    {% endif %}
),

renamed as (
    select
        receipt_id,
        run_id,
        event_id,
        event,
        event_source,
        event_source_id,
        event_time,
        status,
        attempt,
        http_status,
        api_code,
        api_message,
        request_id,
        test_event_code,
        test_event_code is not null as is_test_event,
        sent_at,
        acknowledged_at,
        payload_sha256,
        experiment_cell,
        sender_version,
        -- set only on the receipt of an outbox row with a null key: such a row is no event
        row_fingerprint
    from source
)

select * from renamed
