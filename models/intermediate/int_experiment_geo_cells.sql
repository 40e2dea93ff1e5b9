{#- The cell of every geo unit of every registered experiment (source experiments): a unit is a
    country, or a region (country and state) with geo_level 'region', of the customers'
    addresses (int_customer_identities). The cell is drawn from a hash of the salt, the
    experiment and the unit, so it is fixed before the test starts and reproducible anywhere:
    bucket = the first 8 hex digits of sha256('<salt>:<experiment_id>:<unit>') mod 10000,
    treatment below treatment_share x 10000. To re-randomise (the design is unbalanced), change
    the salt before started_at. -#}
{%- set assignment_hash = tiktok_outbox.sha256_hex("salt || ':' || experiment_id || ':' || geo_unit") -%}

with experiments as (
    select * from {{ ref('stg_first_party__experiments') }}
    where experiment_id is not null
),

identities as (
    select * from {{ ref('int_customer_identities') }}
),

geos as (
    select distinct
        country_code,
        state
    from identities
    where country_code is not null
),

units as (
    select distinct
        experiments.experiment_id,
        experiments.salt,
        experiments.treatment_share,
        {{ tiktok_outbox.experiment_geo_unit('experiments.geo_level', 'geos.country_code', 'geos.state') }} as geo_unit
    from experiments
    cross join geos
),

bucketed as (
    select
        experiment_id,
        geo_unit,
        treatment_share,
        mod({{ tiktok_outbox.hex_prefix_to_int(assignment_hash) }}, 10000) as bucket
    from units
),

final as (
    select
        experiment_id,
        geo_unit,
        bucket,
        case when bucket < round(treatment_share * 10000) then 'treatment' else 'control' end as experiment_cell
    from bucketed
)

select * from final
