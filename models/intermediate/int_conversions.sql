{#- The network-neutral conversion layer: one row per real-world conversion of any business
    model, with a canonical event name. Ad-network mapping happens downstream.

    Incremental (append): a conversion is taken when it first appears, like its attribution
    downstream; a build reads the source rows of conversions it does not hold yet (a signup's
    activation arrives after the signup, so signups without a held activation are read again).
    A later change to a taken conversion's source row (status, revenue) reaches the outbox with
    `dbt build --full-refresh`. -#}


with orders as (
    select *
    from (
        select
            orders.*,
            row_number() over (partition by order_id order by updated_at desc) as row_rank
        from {{ ref('stg_first_party__orders') }} as orders
        where order_id is not null
          and {{ tiktok_outbox.not_yet_in_this('conversion_id', "'order:' || orders.order_id") }}
    ) as ranked
    where row_rank = 1
),

app_events as (
    select *
    from (
        select
            app_events.*,
            row_number() over (partition by app_event_id order by occurred_at) as row_rank
        from {{ ref('stg_first_party__app_events') }} as app_events
        where app_event_id is not null
          and event_name in ('trial_started', 'subscription_started')
          and {{ tiktok_outbox.not_yet_in_this('conversion_id', "'app_event:' || app_events.app_event_id") }}
    ) as ranked
    where row_rank = 1
),

subscriptions as (
    -- a subscription loaded twice keeps its most recently updated row (no fan-out in the join)
    select *
    from (
        select
            subscriptions.*,
            row_number() over (partition by subscription_id order by updated_at desc) as row_rank
        from {{ ref('stg_first_party__subscriptions') }} as subscriptions
        where subscription_id is not null
    ) as ranked
    where row_rank = 1
),

signups as (
    -- a signup loaded twice keeps its most recently updated row; a null id is not a conversion
    select *
    from (
        select
            signups.*,
            row_number() over (partition by signup_id order by updated_at desc) as row_rank
        from {{ ref('stg_first_party__signups') }} as signups
        where signup_id is not null
          and (
              {{ tiktok_outbox.not_yet_in_this('conversion_id', "'signup:' || signups.signup_id") }}
              or {{ tiktok_outbox.not_yet_in_this('conversion_id', "'activation:' || signups.signup_id") }}
          )
    ) as ranked
    where row_rank = 1
),

order_pixel_event_ids as (
    -- the event_id the pixel sent at checkout, captured on the order's latest session
    select order_id, pixel_event_id
    from (
        select
            order_id,
            pixel_event_id,
            row_number() over (partition by order_id order by started_at desc, session_id) as row_rank
        from {{ ref('stg_first_party__web_sessions') }}
        where pixel_event_id is not null and order_id is not null
          {%- if is_incremental() %}
          and order_id in (select order_id from orders)
          {%- endif %}
    ) as ranked
    where row_rank = 1
),

signup_pixel_event_ids as (
    -- the same for a signup
    select signup_id, pixel_event_id
    from (
        select
            signup_id,
            pixel_event_id,
            row_number() over (partition by signup_id order by started_at desc, session_id) as row_rank
        from {{ ref('stg_first_party__web_sessions') }}
        where pixel_event_id is not null and signup_id is not null
          {%- if is_incremental() %}
          and signup_id in (select signup_id from signups)
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
        cast(orders.net_revenue as {{ tiktok_outbox.type_double() }}) as observed_value,
        orders.currency as observed_currency,
        orders.order_status <> 'cancelled' as is_completed,
        order_pixel_event_ids.pixel_event_id as captured_event_id,
        cast(null as {{ dbt.type_string() }}) as source_ip,
        cast(null as {{ dbt.type_string() }}) as source_user_agent
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
        app_events.user_agent as source_user_agent
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
        cast(null as {{ dbt.type_string() }}) as source_user_agent
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
        cast(null as {{ dbt.type_string() }}) as source_user_agent
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

select * from unioned
where {{ tiktok_outbox.not_yet_in_this('conversion_id', 'unioned.conversion_id') }}
