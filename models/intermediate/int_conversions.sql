{#- The network-neutral conversion layer: one row per real-world conversion of any business
    model, with a canonical event name. Ad-network mapping happens downstream.

    Incremental (delete+insert on conversion_id): a build derives the conversions that are new to
    this table and, again, every open one (macro is_open_conversion: not in the outbox yet and
    not too old to send) from the source rows as they are now, so a cancellation, refund,
    currency fix or duplicate load that arrives before a conversion is sent reaches it. A
    conversion in the outbox is frozen and not derived again. README, "Late and corrected data".

    Latest-row rules (a key loaded twice): the most recently updated row, nulls last, then a
    fixed order of the row's other columns, so every warehouse picks the same row. -#}
{#- the device columns of app events, null on the other conversions -#}
{%- set device_columns = ['device_platform', 'att_status', 'idfa', 'idfv', 'gaid'] -%}

with staged_orders as (
    select * from {{ ref('stg_first_party__orders') }}
),

orders as (
    select *
    from (
        select
            staged_orders.*,
            row_number() over (
                partition by order_id
                order by
                    updated_at desc nulls last, ordered_at desc nulls last, order_status asc, currency asc,
                    net_revenue asc, refunded_amount asc
            ) as row_rank
        from staged_orders
        where order_id is not null
            {%- if is_incremental() %}
            and order_id in (
                select changed.order_id from staged_orders as changed
                where {{ tiktok_outbox.needs_evaluation("'order:' || changed.order_id", 'changed.ordered_at') }}
            )
            {%- endif %}
    ) as ranked
    where row_rank = 1
),

staged_app_events as (
    select * from {{ ref('stg_first_party__app_events') }}
    where app_event_id is not null
        and event_name in ('trial_started', 'subscription_started')
),

app_events as (
    select *
    from (
        select
            staged_app_events.*,
            row_number() over (
                partition by app_event_id
                order by occurred_at asc nulls last, event_name asc, subscription_id asc, customer_id asc
            ) as row_rank
        from staged_app_events
        {%- if is_incremental() %}
        where app_event_id in (
                select changed.app_event_id from staged_app_events as changed
                where
                    {{ tiktok_outbox.needs_evaluation("'app_event:' || changed.app_event_id", 'changed.occurred_at') }}
            )
        {%- endif %}
    ) as ranked
    where row_rank = 1
),

subscriptions as (
    -- a subscription loaded twice keeps its most recently updated row (no fan-out in the join)
    select *
    from (
        select
            subscriptions.*,
            row_number() over (
                partition by subscription_id
                order by updated_at desc nulls last, subscribed_at desc nulls last, price asc, currency asc
            ) as row_rank
        from {{ ref('stg_first_party__subscriptions') }} as subscriptions
        where subscription_id is not null
            {%- if is_incremental() %}
            and subscription_id in (select app_events.subscription_id from app_events)
            {%- endif %}
    ) as ranked
    where row_rank = 1
),

staged_signups as (
    select * from {{ ref('stg_first_party__signups') }}
),

signups as (
    -- a signup loaded twice keeps its most recently updated row; a null id is not a conversion
    select *
    from (
        select
            staged_signups.*,
            row_number() over (
                partition by signup_id
                order by
                    updated_at desc nulls last, signed_up_at desc nulls last, activated_at desc nulls last,
                    customer_id asc
            ) as row_rank
        from staged_signups
        where signup_id is not null
        {%- if is_incremental() %}
        and signup_id in (
            select changed.signup_id from staged_signups as changed
            where
                {{ tiktok_outbox.needs_evaluation("'signup:' || changed.signup_id", 'changed.signed_up_at') }}
                or (
                    changed.activated_at is not null
                    and {{ tiktok_outbox.needs_evaluation(
                            "'activation:' || changed.signup_id", 'changed.activated_at'
                        ) }}
                )
        )
        {%- endif %}
    ) as ranked
    where row_rank = 1
),

order_pixel_event_ids as (
    -- the event_id the pixel sent at checkout, captured on the order's latest session
    select
        order_id,
        pixel_event_id
    from (
        select
            order_id,
            pixel_event_id,
            row_number() over (
                partition by order_id order by started_at desc nulls last, session_id asc, pixel_event_id asc
            ) as row_rank
        from {{ ref('stg_first_party__web_sessions') }}
        where pixel_event_id is not null and order_id is not null
            {%- if is_incremental() %}
            and order_id in (select orders.order_id from orders)
            {%- endif %}
    ) as ranked
    where row_rank = 1
),

signup_pixel_event_ids as (
    -- the same for a signup
    select
        signup_id,
        pixel_event_id
    from (
        select
            signup_id,
            pixel_event_id,
            row_number() over (
                partition by signup_id order by started_at desc nulls last, session_id asc, pixel_event_id asc
            ) as row_rank
        from {{ ref('stg_first_party__web_sessions') }}
        where pixel_event_id is not null and signup_id is not null
            {%- if is_incremental() %}
            and signup_id in (select signups.signup_id from signups)
            {%- endif %}
    ) as ranked
    where row_rank = 1
),

purchases as (
    select
        'order:' || orders.order_id as conversion_id,
        'purchase' as canonical_event,
        'ecommerce' as business_model,
        orders.customer_id,
        orders.ordered_at as converted_at,
        orders.order_id as source_record_id,
        orders.order_id,
        -- refunds known before the event is sent reduce its observed value
        cast(orders.net_revenue - coalesce(orders.refunded_amount, 0) as {{ tiktok_outbox.type_double() }})
            as observed_value,
        orders.currency as observed_currency,
        orders.order_status <> 'cancelled' as is_completed,
        order_pixel_event_ids.pixel_event_id as captured_event_id,
        cast(null as {{ dbt.type_string() }}) as source_ip,
        cast(null as {{ dbt.type_string() }}) as source_user_agent,
        cast(null as {{ dbt.type_string() }}) as awaited_record,
        {%- for column in device_columns %}
        cast(null as {{ dbt.type_string() }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from orders
    left join order_pixel_event_ids
        on orders.order_id = order_pixel_event_ids.order_id
),

app_conversions as (
    select
        'app_event:' || app_events.app_event_id as conversion_id,
        app_events.event_name as canonical_event,
        'subscription_app' as business_model,
        coalesce(app_events.customer_id, subscriptions.customer_id) as customer_id,
        app_events.occurred_at as converted_at,
        app_events.subscription_id as source_record_id,
        app_events.subscription_id as order_id,
        case
            when app_events.event_name = 'subscription_started'
                then cast(subscriptions.price as {{ tiktok_outbox.type_double() }})
        end as observed_value,
        subscriptions.currency as observed_currency,
        true as is_completed,
        app_events.app_event_id as captured_event_id,
        app_events.ip as source_ip,
        app_events.user_agent as source_user_agent,
        -- a paid subscription's price and currency come from its subscription row
        case
            when app_events.event_name = 'subscription_started' and subscriptions.subscription_id is null
                then 'subscription'
        end as awaited_record,
        -- device ids by platform and App Tracking Transparency (README, "Match keys"): the IDFA
        -- only where the user authorised tracking, the IDFV on every iOS event, the GAID on Android
        app_events.platform as device_platform,
        {{ tiktok_outbox.normalize_att_status('app_events.att_status', 'app_events.platform') }} as att_status,
        case
            when app_events.platform = 'ios'
                and {{ tiktok_outbox.normalize_att_status('app_events.att_status', 'app_events.platform') }}
                = 'AUTHORIZED'
                then {{ tiktok_outbox.normalize_device_id('app_events.idfa', 'upper') }}
        end as idfa,
        case
            when app_events.platform = 'ios' then {{ tiktok_outbox.normalize_device_id('app_events.idfv', 'upper') }}
        end as idfv,
        case
            when
                app_events.platform = 'android'
                then {{ tiktok_outbox.normalize_device_id('app_events.gaid', 'lower') }}
        end as gaid
    from app_events
    left join subscriptions
        on app_events.subscription_id = subscriptions.subscription_id
),

signup_conversions as (
    select
        'signup:' || signups.signup_id as conversion_id,
        'signup' as canonical_event,
        'saas' as business_model,
        signups.customer_id,
        signups.signed_up_at as converted_at,
        signups.signup_id as source_record_id,
        signups.signup_id as order_id,
        cast(null as {{ tiktok_outbox.type_double() }}) as observed_value,
        cast(null as {{ dbt.type_string() }}) as observed_currency,
        true as is_completed,
        signup_pixel_event_ids.pixel_event_id as captured_event_id,
        cast(null as {{ dbt.type_string() }}) as source_ip,
        cast(null as {{ dbt.type_string() }}) as source_user_agent,
        cast(null as {{ dbt.type_string() }}) as awaited_record,
        {%- for column in device_columns %}
        cast(null as {{ dbt.type_string() }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from signups
    left join signup_pixel_event_ids
        on signups.signup_id = signup_pixel_event_ids.signup_id
),

activations as (
    select
        'activation:' || signup_id as conversion_id,
        'account_activated' as canonical_event,
        'saas' as business_model,
        customer_id,
        activated_at as converted_at,
        signup_id as source_record_id,
        signup_id as order_id,
        cast(null as {{ tiktok_outbox.type_double() }}) as observed_value,
        cast(null as {{ dbt.type_string() }}) as observed_currency,
        true as is_completed,
        cast(null as {{ dbt.type_string() }}) as captured_event_id,
        cast(null as {{ dbt.type_string() }}) as source_ip,
        cast(null as {{ dbt.type_string() }}) as source_user_agent,
        cast(null as {{ dbt.type_string() }}) as awaited_record,
        {%- for column in device_columns %}
        cast(null as {{ dbt.type_string() }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from signups
    where activated_at is not null
),

unioned as (
    select * from purchases
    union all
    select * from app_conversions
    union all
    select * from signup_conversions
    union all
    select * from activations
)

{{ tiktok_outbox.select_needing_evaluation('unioned', 'unioned') }}
