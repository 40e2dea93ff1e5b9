{#- Every conversion as a TikTok event candidate: mapped to a TikTok event, valued, given its
    event_id and experiment cell, and checked. exclusion_reason is null for events the outbox
    takes; otherwise it names the first rule the event failed (order below).

    Value of an anchor event in the treatment cell (README, "Modeled values"):
      1. score      = latest valid pLTV score known at build time (int_pltv_scores_latest)
      2. converted  = score in the reporting currency (seed fx_rates)
      3. calibrated = converted x calibration factor of its cohort (seed pltv_calibration_factors)
      4. blended    = (1 - w) x calibrated + w x observed net revenue, w = tiktok_value_revenue_blend
      5. capped     = min(blended, percentile tiktok_value_cap_percentile of blended values of the
                      business model's anchor events)
      6. value      = max(capped, tiktok_value_floor), rounded to cents
    The holdout cell and non-anchor events carry the observed (business-as-usual) value.

    The cap population: the modeled (uncapped) values of the business model's treatment-cell
    anchors converted in the last tiktok_value_cap_window_days, those already in the outbox as they
    were sent plus those evaluated now, so an incremental build and a full refresh cap alike.

    Consent and erasure (README, "Consent and erasure"; int_customer_privacy): a customer who asked
    to be forgotten is excluded (`erased`); one who refused sharing, or, where opt-in is the rule
    (var tiktok_consent_opt_in_countries, else var tiktok_consent_default), had not granted it by
    the time of the conversion, is excluded (`no_consent`). Both are decided again on every build
    until the conversion is sent, so a withdrawal reaches every conversion not in the outbox yet.
    A "do not sell or share" opt-out sends the event with limited_data_use.

    Settle before send: a conversion whose own record has not arrived (the checkout or signup
    session that carries the pixel's event_id, click id and browser context; a paid
    subscription's price) waits, wait_reason set and neither ready nor excluded, until it arrives
    or tiktok_settle_minutes after converted_at have passed at the build's time; then it goes out
    with what has arrived. A complete conversion goes out at once.

    Incremental (delete+insert on conversion_id): a build evaluates the new conversions and every
    open one again (macro is_open_conversion: not in the outbox, not too old to send), from
    what has arrived by now: a waiting conversion, an exclusion fixed at the source, a correction
    that reaches a conversion before it is sent. A conversion in the outbox is frozen: it is not
    evaluated again, and its event key and value stay in the duplicate check and the cap
    population. A full refresh evaluates everything again (after changing the mapping, the
    value vars or the calibration seed); what it decides applies to conversions not in the
    outbox only, since the outbox ignores --full-refresh. README, "Late and corrected data". -#}

{%- set reporting_currency = var('tiktok_reporting_currency') | upper -%}
{%- set blend = var('tiktok_value_revenue_blend') | float -%}
{%- set cap_percentile = var('tiktok_value_cap_percentile') | float -%}
{%- set floor_value = var('tiktok_value_floor') | float -%}
{%- set missing_policy = var('tiktok_missing_prediction_policy') -%}
{%- set holdout_mode = var('tiktok_holdout_mode') -%}
{#- a flag is on when it reads true, 1 or yes in any case (a boolean, or text from --vars or an env_var),
    as every flag of the project reads -#}
{%- set send_predicted_ltv = var('tiktok_send_predicted_ltv', false) | string | lower in ['true', '1', 'yes'] -%}
{%- set consent_default = var('tiktok_consent_default') -%}
{%- set opt_in_countries = var('tiktok_consent_opt_in_countries') or [] -%}
{%- set ldu_default = var('tiktok_limited_data_use_default') | string | lower in ['true', '1', 'yes'] -%}
{%- set settle_minutes = var('tiktok_settle_minutes') | int -%}
{%- set cap_window_days = var('tiktok_value_cap_window_days') | int -%}
{%- set as_of = tiktok_outbox.tiktok_as_of() -%}

{%- set sendable_since = tiktok_outbox.sendable_since() -%}
{%- set outbox = tiktok_outbox.outbox_relation() -%}
{%- if settle_minutes < 0 -%}
    {{ exceptions.raise_compiler_error("var tiktok_settle_minutes must be 0 or more, got " ~ settle_minutes) }}
{%- endif -%}
{%- if cap_window_days < 1 -%}
    {{ exceptions.raise_compiler_error("var tiktok_value_cap_window_days must be 1 or more, got " ~ cap_window_days) }}
{%- endif -%}
{%- if outbox is not none and execute
      and 'uncapped_value' not in (adapter.get_columns_in_relation(outbox) | map(attribute='name') | map('lower') | list) -%}
    {{ exceptions.raise_compiler_error(
        "tiktok_events_outbox (" ~ outbox ~ ") predates the uncapped_value column; add it once with: "
        ~ "alter table " ~ outbox ~ " add column uncapped_value decimal(18, 2)   (README, 'Upgrading')") }}
{%- endif -%}
{#- the outbox stores money as decimal(18,2): anything this large is a broken score, not a value -#}
{%- set max_value = 1e15 | int -%}
{%- if not (0 <= blend <= 1) -%}
    {{ exceptions.raise_compiler_error("var tiktok_value_revenue_blend must be between 0 and 1, got " ~ blend) }}
{%- endif -%}
{%- if not (0 < cap_percentile <= 1) -%}
    {{ exceptions.raise_compiler_error("var tiktok_value_cap_percentile must be in (0, 1], got " ~ cap_percentile) }}
{%- endif -%}
{%- if missing_policy not in ['observed_value', 'exclude'] -%}
    {{ exceptions.raise_compiler_error("var tiktok_missing_prediction_policy must be 'observed_value' or 'exclude', got '" ~ missing_policy ~ "'") }}
{%- endif -%}
{%- if consent_default not in ['opt_in', 'opt_out'] -%}
    {{ exceptions.raise_compiler_error("var tiktok_consent_default must be 'opt_in' or 'opt_out', got '" ~ consent_default ~ "'") }}
{%- endif -%}
{%- if opt_in_countries is string -%}
    {{ exceptions.raise_compiler_error("var tiktok_consent_opt_in_countries must be a list of ISO-2 codes, got '" ~ opt_in_countries ~ "'") }}
{%- endif -%}
{%- if holdout_mode not in ['bau_value', 'suppress'] -%}
    {{ exceptions.raise_compiler_error("var tiktok_holdout_mode must be 'bau_value' or 'suppress', got '" ~ holdout_mode ~ "'") }}
{%- endif -%}

with conversions as (
    {{ tiktok_outbox.select_needing_evaluation(ref('int_conversions_attributed'), 'attributed') }}
),

sent as (
    -- the outbox: what was handed to the sender, frozen
    {%- if outbox is not none %}
    select
        conversion_id,
        event_source_id,
        event,
        event_id,
        converted_at,
        business_model,
        is_value_anchor,
        value_basis,
        experiment_cell,
        uncapped_value
    from {{ outbox }}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as conversion_id,
        cast(null as {{ dbt.type_string() }}) as event_source_id,
        cast(null as {{ dbt.type_string() }}) as event,
        cast(null as {{ dbt.type_string() }}) as event_id,
        cast(null as {{ dbt.type_timestamp() }}) as converted_at,
        cast(null as {{ dbt.type_string() }}) as business_model,
        cast(null as {{ dbt.type_boolean() }}) as is_value_anchor,
        cast(null as {{ dbt.type_string() }}) as value_basis,
        cast(null as {{ dbt.type_string() }}) as experiment_cell,
        cast(null as {{ tiktok_outbox.type_double() }}) as uncapped_value
    where 1 = 0
    {%- endif %}
),

mapping as (
    select *
    from {{ ref('tiktok_event_mapping') }}
    where is_enabled
        and business_model in (
            {% for m in var('tiktok_business_models') %}'{{ m }}'{% if not loop.last %},
            {% endif %}{% endfor %}
        )
),

identities as (
    select * from {{ ref('int_customer_identities') }}
),

scores as (
    select * from {{ ref('int_pltv_scores_latest') }}
),

cells as (
    select * from {{ ref('int_experiment_assignments') }}
),

fx as (
    select * from {{ ref('int_fx_to_reporting') }}
),

calibration as (
    select * from {{ ref('pltv_calibration_factors') }}
),

privacy as (
    select * from {{ ref('int_customer_privacy') }}
),

order_lines as (
    -- the lines of the orders evaluated now (README, "Product contents"), priced in the
    -- reporting currency; a line without a product id or with no units is left out
    select
        lines.order_id,
        lines.line_number,
        lines.product_id,
        lines.product_name,
        lines.quantity,
        {{ tiktok_outbox.round_money('lines.unit_price * line_fx.to_reporting') }} as price
    from {{ ref('stg_first_party__order_items') }} as lines
    inner join conversions as purchases
        on purchases.canonical_event = 'purchase'
            and lines.order_id = purchases.order_id
    inner join fx as line_fx
        on purchases.observed_currency = line_fx.currency_code
    where lines.product_id is not null and lines.quantity > 0
),

order_contents as (
    select
        order_id,
        {{ tiktok_outbox.contents_json('line_number', 'product_id', 'product_name', 'quantity', 'price') }} as contents,
        sum(quantity) as num_items
    from order_lines
    group by order_id
),

joined as (
    select
        conversions.*,
        mapping.tiktok_event as event,
        mapping.event_source,
        coalesce(mapping.is_value_anchor, false) as is_value_anchor,
        mapping.canonical_event is not null as is_mapped,
        {{ tiktok_outbox.tiktok_event_source_id('mapping.event_source') }} as default_event_source_id,
        identities.country_code,
        identities.email_sha256,
        identities.phone_sha256,
        identities.external_id_sha256,
        identities.first_name_sha256,
        identities.last_name_sha256,
        identities.zip_code_sha256,
        identities.city,
        identities.state,
        identities.country,
        identities.locale,
        -- consent (README, "Consent and erasure"): the rule of the customer's country, else the default
        {%- if opt_in_countries %}
        case
            when
                identities.country_code in (
                    {% for c in opt_in_countries %}'{{ c | upper }}'{% if not loop.last %},
                    {% endif %}{% endfor %}
                )
                then 'opt_in'
            else '{{ consent_default }}'
        end as consent_rule,
        {%- else %}
        '{{ consent_default }}' as consent_rule,
        {%- endif %}
        privacy.consent_status,
        privacy.consent_granted_since,
        coalesce(privacy.is_erased, false) as is_erased,
        {{ 'true' if ldu_default else 'coalesce(privacy.is_sale_or_share_opted_out, false)' }} as limited_data_use,
        order_contents.contents,
        case when order_contents.contents is not null then 'product' end as content_type,
        order_contents.num_items,
        scores.predicted_ltv,
        scores.predicted_ltv_currency,
        scores.model_version,
        scores.scored_at,
        scores.is_valid_score,
        cells.experiment_cell,
        observed_fx.to_reporting as observed_fx_rate,
        score_fx.to_reporting as score_fx_rate,
        coalesce(conversions.captured_event_id, conversions.canonical_event || '-' || conversions.source_record_id)
            as event_id,
        sent_conversion.conversion_id is not null as is_sent,
        -- the record a complete conversion has and this one still lacks
        case
            when conversions.awaited_record = 'subscription' then 'awaiting_subscription'
            when conversions.canonical_event = 'purchase' and not conversions.has_linked_session
                then 'awaiting_checkout_session'
            when conversions.canonical_event = 'signup' and not conversions.has_linked_session
                then 'awaiting_signup_session'
        end as awaited
    from conversions
    left join sent as sent_conversion
        on conversions.conversion_id = sent_conversion.conversion_id
    left join mapping
        on conversions.canonical_event = mapping.canonical_event
            and conversions.business_model = mapping.business_model
    left join identities
        on conversions.customer_id = identities.customer_id
    left join privacy
        on conversions.customer_id = privacy.customer_id
    left join order_contents
        on conversions.canonical_event = 'purchase'
            and conversions.order_id = order_contents.order_id
    left join scores
        on conversions.customer_id = scores.customer_id
    left join cells
        on conversions.conversion_id = cells.conversion_id
    left join fx as observed_fx
        on conversions.observed_currency = observed_fx.currency_code
    left join fx as score_fx
        on scores.predicted_ltv_currency = score_fx.currency_code
),

routes as (
-- the most specific event_sources row of each (source, platform, country) evaluated, ranked
-- once per combination like the calibration factors below (README, "Event sources")
    {{ tiktok_outbox.most_specific_rule(
        "(
            select distinct
                coalesce(event_source, '*') as event_source_key,
                coalesce(device_platform, '*') as platform_key,
                coalesce(country_code, '*') as country_code_key
            from joined
        )",
        ref('stg_first_party__event_sources'),
        exact=[('event_source_key', 'event_source')],
        wildcards=[('platform_key', 'platform'), ('country_code_key', 'country_code')],
        value='event_source_id',
        where='rules.event_source_id is not null',
    ) }}
),

routed as (
    select
        joined.*,
        coalesce(routes.event_source_id, joined.default_event_source_id) as event_source_id
    from joined
    left join routes
        on coalesce(joined.event_source, '*') = routes.event_source_key
            and coalesce(joined.device_platform, '*') = routes.platform_key
            and coalesce(joined.country_code, '*') = routes.country_code_key
),

cohort_factors as (
-- the most specific calibration row of each cohort wins. Ranked once per cohort (model
-- version x business model x country, a few hundred), not once per conversion; a missing key
-- is '*', which matches the wildcard rows only, as the missing key itself would.
    {{ tiktok_outbox.most_specific_rule(
        "(
            select distinct
                coalesce(model_version, '*') as model_version_key,
                coalesce(business_model, '*') as business_model_key,
                coalesce(country_code, '*') as country_code_key
            from routed
        )",
        'calibration',
        wildcards=[('model_version_key', 'model_version'), ('business_model_key', 'business_model'),
                   ('country_code_key', 'country_code')],
        value='calibration_factor',
    ) }}
),

calibrated as (
    select
        routed.*,
        coalesce(factor.calibration_factor, 1.0) as calibration_factor,
        routed.observed_value * routed.observed_fx_rate as observed_value_reporting,
        case when routed.is_valid_score then
                routed.predicted_ltv * routed.score_fx_rate * coalesce(factor.calibration_factor, 1.0)
        end as calibrated_value
    from routed
    left join cohort_factors as factor
        on coalesce(routed.model_version, '*') = factor.model_version_key
            and coalesce(routed.business_model, '*') = factor.business_model_key
            and coalesce(routed.country_code, '*') = factor.country_code_key
),

blended as (
    select
        calibrated.*,
        case when calibrated_value is not null then
                {{ 1 - blend }} * calibrated_value + {{ blend }} * coalesce(observed_value_reporting, 0)
        end as blended_value
    from calibrated
),

cap_population as (
    -- treatment anchors with a modeled value in the cap window: sent (as sent), and evaluated now
    select
        business_model,
        blended_value
    from blended
    where is_value_anchor and experiment_cell = 'treatment' and blended_value is not null
        and not is_sent
        and converted_at >= {{ dbt.dateadd('day', -cap_window_days, as_of) }}
        and converted_at >= {{ sendable_since }}
    union all
    select
        business_model,
        cast(uncapped_value as {{ tiktok_outbox.type_double() }}) as blended_value
    from sent
    where is_value_anchor and experiment_cell = 'treatment' and value_basis = 'pltv' and uncapped_value is not null
        and converted_at >= {{ dbt.dateadd('day', -cap_window_days, as_of) }}
),

caps as (
    select
        business_model,
        {{ tiktok_outbox.percentile('blended_value', cap_percentile) }} as value_cap
    from cap_population
    group by business_model
),

valued as (
    select
        blended.*,
        caps.value_cap,
        case
            when blended.is_value_anchor and blended.experiment_cell = 'treatment'
                then
                    case
                        when blended.blended_value is not null then 'pltv'
                        {%- if missing_policy == 'observed_value' %}
                        when
                            blended.predicted_ltv is null and blended.observed_value_reporting > 0
                            then 'observed_fallback'
                        {%- endif %}
                        else 'none'
                    end
            when blended.observed_value_reporting > 0 then 'observed'
            else 'none'
        end as value_basis
    from blended
    left join caps
        on blended.business_model = caps.business_model
),

screened as (
    -- the exclusions that come before waiting (a cancelled, unmapped, undated, future or too old
    -- conversion, one without an event source id, or one its customer has not allowed to be
    -- shared, does not wait), and when waiting ends
    select
        valued.*,
        {{ dbt.dateadd('minute', settle_minutes, 'converted_at') }} as settles_at,
        case
            when not is_completed then 'not_completed'
            when not is_mapped then 'unmapped_event'
            when converted_at is null then 'missing_event_time'
            when
                converted_at > {{ dbt.dateadd('minute', var('tiktok_future_tolerance_minutes') | int, as_of) }}
                then 'event_in_future'
            when converted_at < {{ sendable_since }} then 'event_too_old'
            when event_source_id is null then 'missing_event_source_id'
            when is_erased then 'erased'
            when consent_status = 'denied' then 'no_consent'
            when consent_rule = 'opt_in'
                and (consent_granted_since is null or consent_granted_since > converted_at)
                then 'no_consent'
        end as early_exclusion
    from valued
),

waits as (
    select
        screened.*,
        case
            when early_exclusion is null and awaited is not null
                and {{ as_of }} < settles_at
                then awaited
        end as wait_reason
    from screened
),

event_keys as (
    -- an event key is taken by the outbox's row, else by the earliest sendable conversion; later
    -- ones are duplicates. Conversions already sent and waiting ones hold no key here.
    select
        conversion_id,
        event_id_rank
    from (
        select
            conversion_id,
            is_evaluated,
            row_number() over (
                partition by event_source_id, event, event_id
                order by sent_first, converted_at nulls last, conversion_id
            ) as event_id_rank
        from (
            select
                conversion_id,
                event_source_id,
                event,
                event_id,
                converted_at,
                1 as sent_first,
                true as is_evaluated
            from waits
            where not is_sent and wait_reason is null
                and (converted_at is null or converted_at >= {{ sendable_since }})
            union all
            select
                conversion_id,
                event_source_id,
                event,
                event_id,
                converted_at,
                0 as sent_first,
                false as is_evaluated
            from sent
        ) as keyed
    ) as ranked
    where is_evaluated
),

finalized as (
    select
        waits.*,
        waits.value_basis = 'pltv' and waits.blended_value > waits.value_cap as is_value_capped,
        case waits.value_basis
            when 'pltv' then greatest(least(waits.blended_value, waits.value_cap), {{ floor_value }})
            when 'observed_fallback' then greatest(waits.observed_value_reporting, {{ floor_value }})
            when 'observed' then waits.observed_value_reporting
        end as raw_value,
        event_keys.event_id_rank
    from waits
    left join event_keys
        on waits.conversion_id = event_keys.conversion_id
),

checked as (
    select
        finalized.*,
        case
            when early_exclusion is not null then early_exclusion
            when wait_reason is not null then null
            when event_id_rank > 1 then 'duplicate_event_id'
            {%- if holdout_mode == 'suppress' %}
            when experiment_cell = 'holdout' then 'holdout_suppressed'
            {%- endif %}
            when observed_value is not null and observed_fx_rate is null then 'invalid_currency'
            when predicted_ltv is not null and is_valid_score and score_fx_rate is null then 'invalid_currency'
            when
                is_value_anchor and experiment_cell = 'treatment' and predicted_ltv is not null and not is_valid_score
                then 'invalid_value'
            when
                raw_value is not null
                and not (
                    {{ tiktok_outbox.is_finite_number('raw_value') }} and raw_value >= 0 and raw_value < {{ max_value }}
                )
                then 'invalid_value'
            when is_value_anchor and raw_value is null and not (experiment_cell = 'holdout') then 'missing_value'
            when email_sha256 is null and phone_sha256 is null and external_id_sha256 is null
                and ttclid is null and ttp is null and (ip is null or user_agent is null)
                and idfa is null and idfv is null and gaid is null then 'no_match_key'
        end as exclusion_reason
    from finalized
),

final as (
    -- an erased customer's conversions keep none of their identifiers, whatever their reason
    select
        conversion_id,
        event_id,
        event,
        event_source,
        event_source_id,
        {{ tiktok_outbox.to_unix_seconds('converted_at') }} as event_time,
        converted_at,
        canonical_event,
        business_model,
        customer_id,
        {%- for column in ['email_sha256', 'phone_sha256', 'external_id_sha256', 'ttclid', 'ttp', 'ip', 'user_agent',
                           'page_url'] %}
        case when is_erased then null else {{ column }} end as {{ column }},
        {%- endfor %}
        {{ tiktok_outbox.round_money('raw_value') }} as value,
        case when raw_value is not null then '{{ reporting_currency }}' end as currency,
        order_id,
        experiment_cell,
        limited_data_use,
        consent_rule,
        consent_status,
        -- device ids (app events) and the other match keys (README, "Match keys")
        device_platform,
        att_status,
        {%- for column in ['idfa', 'idfv', 'gaid', 'first_name_sha256', 'last_name_sha256', 'zip_code_sha256', 'city',
                           'state', 'country', 'locale'] %}
        case when is_erased then null else {{ column }} end as {{ column }},
        {%- endfor %}
        contents,
        content_type,
        num_items,
        -- provenance only carries scores that could be used (NaN and the like are not numbers to ship)
        case when is_valid_score and predicted_ltv < {{ max_value }} then predicted_ltv end as predicted_ltv,
        predicted_ltv_currency,
        model_version,
        scored_at,
        calibration_factor,
        coalesce(is_value_capped, false) as is_value_capped,
        value_basis,
        {{ tiktok_outbox.round_money('observed_value_reporting') }} as observed_value,
        is_value_anchor,
        -- the uncapped modeled value: the cap population of later builds
        blended_value,
        -- properties.predicted_ltv (var tiktok_send_predicted_ltv): the calibrated score in the
        -- reporting currency, on treatment anchors valued by pLTV only (README, "Modeled values")
        {%- if send_predicted_ltv %}
        case
            when value_basis = 'pltv' and is_value_anchor and experiment_cell = 'treatment'
                and calibrated_value < {{ max_value }}
                then {{ tiktok_outbox.round_money('calibrated_value') }}
        end as properties_predicted_ltv,
        {%- else %}
        cast(null as decimal(18, 2)) as properties_predicted_ltv,
        {%- endif %}
        exclusion_reason,
        wait_reason,
        settles_at,
        {{ as_of }} as evaluated_at
    from checked
)

select * from final
