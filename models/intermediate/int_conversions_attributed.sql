{#- Incremental: conversions already here keep their attribution (sessions precede the conversions
    they lend keys to); `dbt build --full-refresh` recomputes everything.

    Click-id persistence: each conversion carries the ttclid of the customer's latest ad click
    inside tiktok_click_window_days before it, and the browser context (ttp, ip, user agent, page
    url) of its checkout session, or else of the customer's latest session inside
    tiktok_session_window_hours. App conversions keep the ip and user agent of the app event. -#}
{%- set click_window_days = var('tiktok_click_window_days') | int -%}
{%- set session_window_hours = var('tiktok_session_window_hours') | int -%}
{%- set lookback_hours = [click_window_days * 24, session_window_hours] | max -%}

with conversions as (
    select * from {{ ref('int_conversions') }}
    {% if is_incremental() %}
    -- a conversion is attributed once, when it first appears: a rebuild costs what is new
    where conversion_id not in (select conversion_id from {{ this }})
    {% endif %}
),

sessions as (
    select * from {{ ref('stg_first_party__web_sessions') }}
),

linked_sessions as (
    -- sessions that completed an order or a signup, keyed like the conversion they belong to
    -- (one equality key, so the join below is a hash join, not a nested loop)
    select 'purchase' as canonical_event, order_id as source_record_id, sessions.*
    from sessions
    where order_id is not null
    union all
    select 'signup' as canonical_event, signup_id as source_record_id, sessions.*
    from sessions
    where signup_id is not null
),

candidate_sessions as (
    -- the session the conversion happened in (linked by order or signup id) ...
    select
        conversions.conversion_id,
        conversions.converted_at,
        linked_sessions.session_id,
        linked_sessions.started_at,
        linked_sessions.ttclid,
        linked_sessions.ttp,
        linked_sessions.ip,
        linked_sessions.user_agent,
        linked_sessions.page_url,
        true as is_linked_session
    from conversions
    inner join linked_sessions
        on conversions.canonical_event = linked_sessions.canonical_event
        and conversions.source_record_id = linked_sessions.source_record_id

    union all

    -- ... and the customer's sessions in the look-back window before it
    select
        conversions.conversion_id,
        conversions.converted_at,
        sessions.session_id,
        sessions.started_at,
        sessions.ttclid,
        sessions.ttp,
        sessions.ip,
        sessions.user_agent,
        sessions.page_url,
        false as is_linked_session
    from conversions
    inner join sessions
        on sessions.customer_id = conversions.customer_id
        and sessions.started_at <= conversions.converted_at
        and sessions.started_at >= {{ dbt.dateadd('hour', -lookback_hours, 'conversions.converted_at') }}
),

latest_click as (
    select conversion_id, session_id as click_session_id, started_at as clicked_at, ttclid
    from (
        select
            candidate_sessions.*,
            row_number() over (
                partition by conversion_id order by started_at desc, session_id desc
            ) as row_rank
        from candidate_sessions
        where ttclid is not null
          and started_at <= converted_at
          and started_at >= {{ dbt.dateadd('day', -click_window_days, 'converted_at') }}
    ) as ranked
    where row_rank = 1
),

context_session as (
    select conversion_id, session_id as context_session_id, ttp, ip, user_agent, page_url
    from (
        select
            candidate_sessions.*,
            row_number() over (
                partition by conversion_id
                order by case when is_linked_session then 0 else 1 end, started_at desc, session_id desc
            ) as row_rank
        from candidate_sessions
        where is_linked_session
           or started_at >= {{ dbt.dateadd('hour', -session_window_hours, 'converted_at') }}
    ) as ranked
    where row_rank = 1
),

final as (
    select
        conversions.*,
        latest_click.ttclid,
        latest_click.clicked_at,
        latest_click.click_session_id,
        context_session.context_session_id,
        context_session.ttp,
        coalesce(conversions.source_ip, context_session.ip) as ip,
        coalesce(conversions.source_user_agent, context_session.user_agent) as user_agent,
        context_session.page_url
    from conversions
    left join latest_click
        on conversions.conversion_id = latest_click.conversion_id
    left join context_session
        on conversions.conversion_id = context_session.conversion_id
)

select * from final
