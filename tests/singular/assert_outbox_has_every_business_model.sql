-- Each business model switched on in var tiktok_business_models has at least one event in the
-- outbox: a silent break in one pipeline (a renamed source column, a mapping typo) shows here.
{{ config(severity=var('tiktok_outbox_empty_model_severity')) }}
with expected as (
    {% for m in var('tiktok_business_models') %}
    select '{{ m }}' as business_model{% if not loop.last %}
    union all{% endif %}
    {% endfor %}
)

select expected.business_model
from expected
left join (select distinct business_model from {{ ref('tiktok_events_outbox') }}) as present
    on expected.business_model = present.business_model
where present.business_model is null
