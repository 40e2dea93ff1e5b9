{#- Deterministic experiment cell per unit (var tiktok_experiment_unit: a customer, or a geo =
    the customer's country). Guest conversions with no customer are their own unit. See macro
    experiment_cell for the rule.

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

units as (
    select distinct
        conversions.conversion_id,
        {%- if unit == 'geo' %}
        'geo:' || coalesce(identities.country_code, 'unknown') as experiment_unit_id
        {%- else %}
        coalesce('customer:' || conversions.customer_id, 'guest:' || conversions.conversion_id) as experiment_unit_id
        {%- endif %}
    from conversions
    left join identities
        on conversions.customer_id = identities.customer_id
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
        conversion_id,
        experiment_unit_id,
        '{{ unit }}' as experiment_unit,
        experiment_bucket,
        {{ tiktok_outbox.experiment_cell('experiment_bucket') }} as experiment_cell
    from bucketed
)

select * from final
