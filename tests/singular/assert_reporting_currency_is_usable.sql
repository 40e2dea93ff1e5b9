-- The reporting currency (var tiktok_reporting_currency) must have an FX rate and be one TikTok
-- accepts; otherwise no value could be sent.
select '{{ var("tiktok_reporting_currency") | upper }}' as reporting_currency
where not exists (
        select 1 from {{ ref('int_fx_to_reporting') }}
        where currency_code = '{{ var("tiktok_reporting_currency") | upper }}'
    )
    or not exists (
        select 1 from {{ ref('tiktok_currencies') }}
        where currency_code = '{{ var("tiktok_reporting_currency") | upper }}'
    )
