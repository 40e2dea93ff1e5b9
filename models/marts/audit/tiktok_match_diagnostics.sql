{#- Share of outbox events carrying each match key, per event and conversion day, and the
    combined coverage: the share with a hashed email, a hashed phone or a click id (the keys that
    identify a person; external_id alone only helps where the pixel sends it too). -#}

with outbox as (
    select
        outbox.*,
        cast({{ dbt.date_trunc('day', 'outbox.converted_at') }} as date) as conversion_date
    from {{ ref('tiktok_events_outbox') }} as outbox
),

final as (
    select
        conversion_date,
        event,
        event_source,
        count(*) as events,
        avg(case when email_sha256 is not null then 1.0 else 0.0 end) as share_email,
        avg(case when phone_sha256 is not null then 1.0 else 0.0 end) as share_phone,
        avg(case when external_id_sha256 is not null then 1.0 else 0.0 end) as share_external_id,
        avg(case when ttclid is not null then 1.0 else 0.0 end) as share_ttclid,
        avg(case when ttp is not null then 1.0 else 0.0 end) as share_ttp,
        avg(case when ip is not null and user_agent is not null then 1.0 else 0.0 end) as share_ip_user_agent,
        avg(
            (case when email_sha256 is not null then 1.0 else 0.0 end)
            + (case when phone_sha256 is not null then 1.0 else 0.0 end)
            + (case when external_id_sha256 is not null then 1.0 else 0.0 end)
            + (case when ttclid is not null then 1.0 else 0.0 end)
            + (case when ttp is not null then 1.0 else 0.0 end)
            + (case when ip is not null and user_agent is not null then 1.0 else 0.0 end)
        ) as avg_keys_per_event,
        avg(
            case when email_sha256 is not null or phone_sha256 is not null or ttclid is not null
                then 1.0 else 0.0 end
        ) as match_coverage
    from outbox
    group by conversion_date, event, event_source
)

select * from final
