{#- The calibration factors the matured scores suggest, at the grain of seed
    pltv_calibration_factors (model_version x business_model x country_code, '*' for any): the
    proposed content of that seed, row for row (README, "Refreshing the calibration factors").

    A factor is realised / predicted over matured customers (int_pltv_calibration_customers: raw
    scores in the reporting currency, before any factor), suggested ('realised') where at least
    var tiktok_calibration_min_customers customers back it: first for each model version x
    business model x country; then for each business model over its customers no suggested
    country row covers, and for each model version over those no suggested row covers at all,
    since a wider row applies only to the events the more specific ones do not take (the
    candidates' "most specific row wins"). A smaller cell is noise and gets no row of its own.
    Rows of the seed that no suggestion replaces are kept as they are ('kept'): a model version
    too recent to have matured keeps its factors, so does the default row '*, *, *', and so does
    a specific row whose cell has too few matured customers yet (remove it by hand to let its
    events fall back to the wider row). current_factor is the seed's factor for the row's keys
    as the candidates would pick it. -#}
{%- set min_customers = var('tiktok_calibration_min_customers') | int -%}

with customers as (
    select
        model_version,
        coalesce(business_model, '*') as business_model,
        coalesce(country_code, '*') as country_code,
        predicted_value,
        realised_value
    from {{ ref('int_pltv_calibration_customers') }}
    where model_version is not null
),

seed as (
    select * from {{ ref('pltv_calibration_factors') }}
),

cells as (
    -- each model version x business model x country cell with its own customers
    select
        model_version,
        business_model,
        country_code,
        count(*) as customers,
        sum(predicted_value) as predicted_total,
        sum(realised_value) as realised_total
    from customers
    where business_model <> '*' and country_code <> '*'
    group by model_version, business_model, country_code
),

suggested_cells as (
    select * from cells
    where customers >= {{ min_customers }} and predicted_total > 0
),

uncovered as (
    -- the customers that no suggested cell of their own covers: a wider row applies to them only
    select customers.*
    from customers
    left join suggested_cells
        on customers.model_version = suggested_cells.model_version
            and customers.business_model = suggested_cells.business_model
            and customers.country_code = suggested_cells.country_code
    where suggested_cells.model_version is null
),

business_models as (
    select
        model_version,
        business_model,
        '*' as country_code,
        count(*) as customers,
        sum(predicted_value) as predicted_total,
        sum(realised_value) as realised_total
    from uncovered
    where business_model <> '*'
    group by model_version, business_model
),

suggested_business_models as (
    select * from business_models
    where customers >= {{ min_customers }} and predicted_total > 0
),

versions as (
    -- each model version over the customers that no suggested row covers either
    select
        uncovered.model_version,
        '*' as business_model,
        '*' as country_code,
        count(*) as customers,
        sum(uncovered.predicted_value) as predicted_total,
        sum(uncovered.realised_value) as realised_total
    from uncovered
    left join suggested_business_models
        on uncovered.model_version = suggested_business_models.model_version
            and uncovered.business_model = suggested_business_models.business_model
    where suggested_business_models.model_version is null
    group by uncovered.model_version
),

evidence as (
    select * from cells
    union all
    select * from business_models
    union all
    select * from versions
),

suggested as (
    select
        model_version,
        business_model,
        country_code,
        customers,
        predicted_total,
        realised_total,
        realised_total / predicted_total as calibration_factor,
        'realised' as basis
    from evidence
    where customers >= {{ min_customers }}
        and predicted_total > 0
),

proposed as (
    select * from suggested
    union all
    select
        seed.model_version,
        seed.business_model,
        seed.country_code,
        evidence.customers,
        evidence.predicted_total,
        evidence.realised_total,
        seed.calibration_factor,
        'kept' as basis
    from seed
    left join evidence
        on seed.model_version = evidence.model_version
            and seed.business_model = evidence.business_model
            and seed.country_code = evidence.country_code
    where not exists (
            select 1 from suggested
            where suggested.model_version = seed.model_version
                and suggested.business_model = seed.business_model
                and suggested.country_code = seed.country_code
        )
),

current_factors as (
-- the seed row the candidates would apply to each row's keys: the most specific match
    {{ tiktok_outbox.most_specific_rule(
        'proposed', 'seed',
        wildcards=[('model_version', 'model_version'), ('business_model', 'business_model'),
                   ('country_code', 'country_code')],
        value='calibration_factor',
    ) }}
),

final as (
    select
        proposed.model_version,
        proposed.business_model,
        proposed.country_code,
        cast(proposed.calibration_factor as decimal(12, 4)) as calibration_factor,
        current_factors.calibration_factor as current_factor,
        proposed.basis,
        coalesce(proposed.customers, 0) as customers,
        proposed.predicted_total,
        proposed.realised_total
    from proposed
    left join current_factors
        on proposed.model_version = current_factors.model_version
            and proposed.business_model = current_factors.business_model
            and proposed.country_code = current_factors.country_code
)

select * from final
