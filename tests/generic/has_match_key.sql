{#- Every event carries at least one key TikTok can match on: hashed email, phone or external id,
    a click id, the _ttp cookie, or the ip and user agent together. -#}
{% test has_match_key(model) %}
select *
from {{ model }}
where email_sha256 is null
  and phone_sha256 is null
  and external_id_sha256 is null
  and ttclid is null
  and ttp is null
  and (ip is null or user_agent is null)
{% endtest %}
