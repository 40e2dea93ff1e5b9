{#- Share of outbox events carrying each match key, per event and conversion day, the combined
    coverage (the share with a hashed email, a hashed phone or a click id: the keys that identify
    a person; external_id alone only helps where the pixel sends it too), and an estimate of each
    event's match quality.

    match_quality (0 to 10) is this project's estimate, not TikTok's score (TikTok publishes no
    formula): 3 for each key that identifies a person on its own (ttclid, hashed email, hashed
    phone, an advertising id: IDFA or GAID), 1 for each that helps (external id, ttp, ip with user
    agent, IDFV, first and last name together), 0.5 for an address key (zip code or city), at most
    10. An event of 6 or more has two identifying keys or one and several helpers: a strong match.
    README, "Match keys". -#}

with outbox as (
    select
        outbox.*,
        cast({{ dbt.date_trunc('day', 'outbox.converted_at') }} as date) as conversion_date
    from {{ ref('tiktok_events_outbox') }} as outbox
),

scored as (
    select
        outbox.*,
        least(
            10.0,
            3.0 * (case when ttclid is not null then 1 else 0 end)
            + 3.0 * (case when email_sha256 is not null then 1 else 0 end)
            + 3.0 * (case when phone_sha256 is not null then 1 else 0 end)
            + 3.0 * (case when idfa is not null or gaid is not null then 1 else 0 end)
            + 1.0 * (case when external_id_sha256 is not null then 1 else 0 end)
            + 1.0 * (case when ttp is not null then 1 else 0 end)
            + 1.0 * (case when ip is not null and user_agent is not null then 1 else 0 end)
            + 1.0 * (case when idfv is not null then 1 else 0 end)
            + 1.0 * (case when first_name_sha256 is not null and last_name_sha256 is not null then 1 else 0 end)
            + 0.5 * (case when zip_code_sha256 is not null or city is not null then 1 else 0 end)
        ) as match_quality
    from outbox
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
                    then 1.0
                else 0.0
            end
        ) as match_coverage,
        -- the keys added with the app identifiers and the other match keys (README, "Match keys")
        avg(case when idfa is not null then 1.0 else 0.0 end) as share_idfa,
        avg(case when idfv is not null then 1.0 else 0.0 end) as share_idfv,
        avg(case when gaid is not null then 1.0 else 0.0 end) as share_gaid,
        avg(case when att_status is not null then 1.0 else 0.0 end) as share_att_status,
        avg(case when first_name_sha256 is not null and last_name_sha256 is not null then 1.0 else 0.0 end)
            as share_name,
        avg(case when zip_code_sha256 is not null then 1.0 else 0.0 end) as share_zip_code,
        avg(case when city is not null then 1.0 else 0.0 end) as share_city,
        avg(case when state is not null then 1.0 else 0.0 end) as share_state,
        avg(case when country is not null then 1.0 else 0.0 end) as share_country,
        avg(case when locale is not null then 1.0 else 0.0 end) as share_locale,
        avg(match_quality) as avg_match_quality,
        avg(case when match_quality >= 6 then 1.0 else 0.0 end) as share_strong_match,
        avg(case when limited_data_use then 1.0 else 0.0 end) as share_limited_data_use
    from scored
    group by conversion_date, event, event_source
)

select * from final
