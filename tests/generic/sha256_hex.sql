{#- Every non-null value is 64 lowercase hex characters (a SHA-256 digest). -#}
{% test sha256_hex(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and not {{ tiktok_outbox.is_sha256_hex(column_name) }}
{% endtest %}
