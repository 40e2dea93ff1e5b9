{#- One row per `sender push` run. Empty (with the same columns) until the first push. -#}
{%- set runs = source('tiktok_delivery', 'tiktok_delivery_runs') -%}

with source as (
    {% if tiktok_outbox.source_relation_exists(runs) %}
    select * from {{ runs }}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as run_id,
        cast(null as {{ dbt.type_timestamp() }}) as started_at,
        cast(null as {{ dbt.type_timestamp() }}) as finished_at,
        cast(null as {{ dbt.type_string() }}) as outcome,
        cast(null as {{ dbt.type_string() }}) as settings,
        cast(null as {{ dbt.type_bigint() }}) as pending,
        cast(null as {{ dbt.type_bigint() }}) as sent,
        cast(null as {{ dbt.type_bigint() }}) as delivered,
        cast(null as {{ dbt.type_bigint() }}) as rejected,
        cast(null as {{ dbt.type_bigint() }}) as failed,
        cast(null as {{ dbt.type_bigint() }}) as expired,
        cast(null as {{ dbt.type_bigint() }}) as requests,
        cast(null as {{ dbt.type_string() }}) as sender_version,
        cast(null as {{ dbt.type_string() }}) as api_url,
        cast(null as {{ dbt.type_string() }}) as test_event_code,
        cast(null as {{ dbt.type_boolean() }}) as dry_run,
        cast(null as {{ dbt.type_string() }}) as message
    where 1 = 0
    {% endif %}
),

renamed as (
    select
        run_id,
        started_at,
        finished_at,
        outcome,
        settings,
        pending,
        sent,
        delivered,
        rejected,
        failed,
        expired,
        requests,
        sender_version,
        api_url,
        test_event_code,
        coalesce(dry_run, false) as is_dry_run,
        message
    from source
)

select * from renamed
