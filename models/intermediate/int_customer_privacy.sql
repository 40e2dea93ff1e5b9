{#- One row per customer with a consent decision or an erasure request, as known at the build's
    as-of instant (tiktok_as_of; later decisions do not count yet, so a replayed build decides
    as it would have then). README, "Consent and erasure".

    Consent to share conversions with ad networks (purpose var tiktok_consent_purpose):
      - consent_denied_at: the customer's latest refusal;
      - consent_granted_since: the first grant after it (after every refusal), null when none;
      - consent_status: granted when there is such a grant, denied when the latest decision is
        a refusal, null when the customer never decided. A grant and a refusal recorded at the
        same instant count as a refusal.
    Limited data use (purpose var tiktok_limited_data_use_purpose, a US state "do not sell or
    share" opt-out): is_sale_or_share_opted_out when the latest decision is a refusal.
    A decision or request with no time counts from the build's instant on (not for the past).

    A view: decisions are few next to conversions, and the candidates read them whole on every
    build, so a withdrawal reaches every conversion not sent yet. -#}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}

with decisions as (
    select
        customer_id,
        purpose,
        status,
        coalesce(recorded_at, {{ as_of }}) as recorded_at
    from {{ ref('stg_first_party__consents') }}
    where customer_id is not null
        and status in ('granted', 'denied')
        and coalesce(recorded_at, {{ as_of }}) <= {{ as_of }}
),

advertising_decided as (
    select
        customer_id,
        max(case when status = 'denied' then recorded_at end) as consent_denied_at
    from decisions
    where purpose = '{{ var("tiktok_consent_purpose") }}'
    group by customer_id
),

advertising as (
    select
        refusals.customer_id,
        refusals.consent_denied_at,
        min(case
            when decisions.status = 'granted'
                and (refusals.consent_denied_at is null or decisions.recorded_at > refusals.consent_denied_at)
                then decisions.recorded_at
        end) as consent_granted_since
    from advertising_decided as refusals
    inner join decisions
        on refusals.customer_id = decisions.customer_id
            and decisions.purpose = '{{ var("tiktok_consent_purpose") }}'
    group by refusals.customer_id, refusals.consent_denied_at
),

sale_or_share as (
    select
        customer_id,
        max(case when status = 'denied' then recorded_at end) as opted_out_at,
        max(case when status = 'granted' then recorded_at end) as opted_in_at
    from decisions
    where purpose = '{{ var("tiktok_limited_data_use_purpose") }}'
    group by customer_id
),

erasures as (
    select
        customer_id,
        min(coalesce(requested_at, {{ as_of }})) as erasure_requested_at
    from {{ ref('stg_first_party__erasure_requests') }}
    where customer_id is not null
        and coalesce(requested_at, {{ as_of }}) <= {{ as_of }}
    group by customer_id
),

customers as (
    select customer_id from advertising
    union
    select customer_id from sale_or_share
    union
    select customer_id from erasures
),

final as (
    select
        customers.customer_id,
        case
            when advertising.consent_granted_since is not null then 'granted'
            when advertising.consent_denied_at is not null then 'denied'
        end as consent_status,
        advertising.consent_granted_since,
        advertising.consent_denied_at,
        coalesce(
            sale_or_share.opted_out_at is not null
            and (sale_or_share.opted_in_at is null or sale_or_share.opted_out_at >= sale_or_share.opted_in_at),
            false
        ) as is_sale_or_share_opted_out,
        erasures.erasure_requested_at,
        erasures.customer_id is not null as is_erased
    from customers
    left join advertising on customers.customer_id = advertising.customer_id
    left join sale_or_share on customers.customer_id = sale_or_share.customer_id
    left join erasures on customers.customer_id = erasures.customer_id
)

select * from final
