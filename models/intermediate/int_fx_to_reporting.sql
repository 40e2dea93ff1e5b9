{#- The factor that turns one unit of each currency into var tiktok_reporting_currency, through
    the USD rates of seed fx_rates. The one place currency conversion is defined. -#}
{%- set reporting_currency = var('tiktok_reporting_currency') | upper -%}

with rates as (
    select * from {{ ref('fx_rates') }}
),

reporting as (
    select usd_per_unit from rates
    where currency_code = '{{ reporting_currency }}'
),

final as (
    select
        rates.currency_code,
        rates.usd_per_unit / reporting.usd_per_unit as to_reporting
    from rates
    cross join reporting
)

select * from final
