{#- No row's `columns` already occur in tiktok_events_outbox: a gate on the rows a build is about
    to append (key uniqueness against the outbox's history). The outbox is looked up, not ref'd,
    so the test does not wait for the model it guards. Passes before the outbox exists. -#}
{% test not_in_outbox(model, columns) %}
{%- set outbox = tiktok_outbox.outbox_relation() -%}
{%- if outbox is none %}
select 1 as no_outbox_yet where 1 = 0
{%- else %}
select {% for c in columns %}batch.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
from {{ model }} as batch
inner join {{ outbox }} as sent
    on {% for c in columns %}batch.{{ c }} = sent.{{ c }}{% if not loop.last %} and {% endif %}{% endfor %}
{%- endif %}
{% endtest %}
