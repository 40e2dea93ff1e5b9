{#- Deterministic experiment cell per unit (var tiktok_experiment_unit: a customer, or a geo =
    the customer's country). Guest conversions with no customer are their own unit. See macro
    experiment_cell for the rule.

    A registered geo experiment of network tiktok (source experiments) overrides that rule while
    it runs: a conversion of its business model converted between started_at and ended_at in one
    of its units takes the unit's cell (int_experiment_geo_cells; control is sent as the
    holdout), with its experiment_id, so that the treatment geos' campaigns optimise on pLTV
    values and the control geos' on business as usual (README, "Geo experiments"). With several
    such experiments, the first experiment_id wins.

    Incremental: a conversion is assigned once, when it first appears, and keeps its cell (a
    conversion never moves between cells mid-experiment, even if its customer's country changes);
    `dbt build --full-refresh` reassigns everything, e.g. after changing the salt or the unit; an
    event already in the outbox keeps the cell it was sent with (the outbox is never rebuilt). -#}
{%- set unit = var('tiktok_experiment_unit') -%}
{%- if unit not in ['customer', 'geo'] -%}
    {{ exceptions.raise_compiler_error("var tiktok_experiment_unit must be 'customer' or 'geo', got '" ~ unit ~ "'") }}
{%- endif -%}

with conversions as (
    select * from {{ ref('int_conversions') }} as new_conversions
    where {{ tiktok_outbox.not_yet_in_this('conversion_id', 'new_conversions.conversion_id') }}
),

identities as (
    select * from {{ ref('int_customer_identities') }}
),

geo_experiments as (
    select experiments.*
    from {{ ref('stg_first_party__experiments') }} as experiments
    where experiments.network = 'tiktok'
        and experiments.experiment_id is not null
        and experiments.started_at < experiments.ended_at
),

geo_cells as (
    select * from {{ ref('int_experiment_geo_cells') }}
),

in_geo_experiment as (
    select
        conversion_id,
        experiment_id,
        geo_unit,
        experiment_bucket,
        experiment_cell
    from (
        select
            conversions.conversion_id,
            geo_experiments.experiment_id,
            geo_cells.geo_unit,
            geo_cells.bucket as experiment_bucket,
            case when geo_cells.experiment_cell = 'treatment' then 'treatment' else 'holdout' end as experiment_cell,
            row_number() over (
                partition by conversions.conversion_id order by geo_experiments.experiment_id
            ) as row_rank
        from conversions
        inner join identities
            on conversions.customer_id = identities.customer_id
        inner join geo_experiments
            on conversions.converted_at >= geo_experiments.started_at
                and conversions.converted_at < geo_experiments.ended_at
                and (
                    geo_experiments.business_model is null
                    or conversions.business_model = geo_experiments.business_model
                )
        inner join geo_cells
            on geo_experiments.experiment_id = geo_cells.experiment_id
                and geo_cells.geo_unit = {{ tiktok_outbox.experiment_geo_unit(
                    'geo_experiments.geo_level', 'identities.country_code', 'identities.state'
                ) }}
    ) as ranked
    where row_rank = 1
),

units as (
    select distinct
        conversions.conversion_id,
        {%- if unit == 'geo' %}
        'geo:' || coalesce(identities.country_code, 'unknown') as experiment_unit_id
        {%- else %}
        coalesce('customer:' || conversions.customer_id, 'guest:' || conversions.conversion_id) as experiment_unit_id
        {%- endif %}
    from conversions
    {%- if unit == 'geo' %}
    left join identities
        on conversions.customer_id = identities.customer_id
    {%- endif %}
),

bucketed as (
    select
        conversion_id,
        experiment_unit_id,
        {{ tiktok_outbox.experiment_bucket('experiment_unit_id') }} as experiment_bucket
    from units
),

final as (
    select
        bucketed.conversion_id,
        coalesce('geo:' || in_geo_experiment.geo_unit, bucketed.experiment_unit_id) as experiment_unit_id,
        case when in_geo_experiment.conversion_id is not null then 'geo' else '{{ unit }}' end as experiment_unit,
        coalesce(in_geo_experiment.experiment_bucket, bucketed.experiment_bucket) as experiment_bucket,
        coalesce(
            in_geo_experiment.experiment_cell, {{ tiktok_outbox.experiment_cell('bucketed.experiment_bucket') }}
        ) as experiment_cell,
        in_geo_experiment.experiment_id
    from bucketed
    left join in_geo_experiment
        on bucketed.conversion_id = in_geo_experiment.conversion_id
)

select * from final
