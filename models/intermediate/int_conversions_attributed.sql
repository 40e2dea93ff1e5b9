{#- Incremental (delete+insert on conversion_id): a build attributes the conversions int_conversions
    derived in it, the new and the open ones (macro is_open_conversion), from the sessions that
    have arrived by then: a checkout session that lands after its order changes the order's
    event_id, click id and browser context until the order is sent. A conversion in the outbox
    keeps the attribution it was sent with. README, "Late and corrected data".

    Click-id persistence: each conversion carries the ttclid of the customer's latest ad click
    inside tiktok_click_window_days before it, and the browser context (ttp, ip, user agent, page
    url) of its checkout session, or else of the customer's latest session inside
    tiktok_session_window_hours. App conversions keep the ip and user agent of the app event.
    has_linked_session says whether the conversion's own checkout or signup session has arrived. -#}
{%- set click_window_days = var('tiktok_click_window_days') | int -%}
{%- set session_window_hours = var('tiktok_session_window_hours') | int -%}
{%- set lookback_hours = [click_window_days * 24, session_window_hours] | max -%}

with conversions as (
    -- new and open conversions only: a rebuild costs what is new and what is not sent yet
    {{ tiktok_outbox.select_needing_evaluation(ref('int_conversions'), 'derived') }}
),

sessions as (
    select * from {{ ref('stg_first_party__web_sessions') }}
    {% if is_incremental() %}
    -- only the sessions of the customers converting now
    where customer_id in (select conversions.customer_id from conversions)
    {% endif %}
),

linked_sessions as (
    -- sessions that completed an order or a signup, keyed like the conversion they belong to
    -- (one equality key, so the join below is a hash join, not a nested loop)
    select
        'purchase' as canonical_event,
        order_id as source_record_id,
        sessions.*
    from {{ ref('stg_first_party__web_sessions') }} as sessions
    where order_id is not null
    {% if is_incremental() %}
    and order_id in (
        select conversions.source_record_id from conversions
        where conversions.canonical_event = 'purchase'
    )
    {% endif %}
    union all
    select
        'signup' as canonical_event,
        signup_id as source_record_id,
        sessions.*
    from {{ ref('stg_first_party__web_sessions') }} as sessions
    where signup_id is not null
    {% if is_incremental() %}
    and signup_id in (
        select conversions.source_record_id from conversions
        where conversions.canonical_event = 'signup'
    )
    {% endif %}
),

candidate_sessions as (
    -- narrow rows (the session's text columns join back once a session is chosen, so the ranking
    -- sorts keys and times only): the session the conversion happened in, linked by order or
    -- signup id ...
    select
        conversions.conversion_id,
        conversions.converted_at,
        linked_sessions.session_id,
        linked_sessions.started_at,
        linked_sessions.ttclid is not null as has_click,
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
        sessions.ttclid is not null as has_click,
        false as is_linked_session
    from conversions
    inner join sessions
        on conversions.customer_id = sessions.customer_id
            and conversions.converted_at >= sessions.started_at
            and sessions.started_at >= {{ dbt.dateadd('hour', -lookback_hours, 'conversions.converted_at') }}
),

linked as (
    select distinct conversion_id
    from candidate_sessions
    where is_linked_session
),

latest_click as (
    select
        conversion_id,
        session_id as click_session_id
    from (
        select
            candidate_sessions.*,
            row_number() over (
                partition by conversion_id order by started_at desc nulls last, session_id desc
            ) as row_rank
        from candidate_sessions
        where has_click
            and started_at <= converted_at
            and started_at >= {{ dbt.dateadd('day', -click_window_days, 'converted_at') }}
    ) as ranked
    where row_rank = 1
),

context_session as (
    select
        conversion_id,
        session_id as context_session_id
    from (
        select
            candidate_sessions.*,
            row_number() over (
                partition by conversion_id
                order by case when is_linked_session then 0 else 1 end, started_at desc nulls last, session_id desc
            ) as row_rank
        from candidate_sessions
        where is_linked_session
            or started_at >= {{ dbt.dateadd('hour', -session_window_hours, 'converted_at') }}
    ) as ranked
    where row_rank = 1
),

chosen_sessions as (
    -- one row per session id, also when a session was loaded twice
    select
        session_id,
        started_at,
        ttclid,
        ttp,
        ip,
        user_agent,
        page_url
    from (
        select
            sessions.*,
            row_number() over (
                partition by session_id
                order by started_at desc nulls last, ttclid asc, ttp asc, ip asc, user_agent asc, page_url asc
            ) as row_rank
        from {{ ref('stg_first_party__web_sessions') }} as sessions
        where session_id in (
                select latest_click.click_session_id from latest_click
                union all
                select context_session.context_session_id from context_session
            )
    ) as ranked
    where row_rank = 1
),

final as (
    select
        conversions.*,
        click.ttclid,
        click.started_at as clicked_at,
        latest_click.click_session_id,
        context_session.context_session_id,
        context.ttp,
        coalesce(conversions.source_ip, context.ip) as ip,
        coalesce(conversions.source_user_agent, context.user_agent) as user_agent,
        context.page_url,
        linked.conversion_id is not null as has_linked_session
    from conversions
    left join latest_click
        on conversions.conversion_id = latest_click.conversion_id
    left join chosen_sessions as click
        on latest_click.click_session_id = click.session_id
    left join linked
        on conversions.conversion_id = linked.conversion_id
    left join context_session
        on conversions.conversion_id = context_session.conversion_id
    left join chosen_sessions as context
        on context_session.context_session_id = context.session_id
)

select * from final
