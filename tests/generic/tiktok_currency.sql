{#- Every non-null value is a currency the TikTok Events API accepts (seed tiktok_currencies). -#}
{% test tiktok_currency(model, column_name) %}
select m.{{ column_name }}
from {{ model }} as m
left join {{ ref('tiktok_currencies') }} as c
    on m.{{ column_name }} = c.currency_code
where m.{{ column_name }} is not null
  and c.currency_code is null
{% endtest %}
