{#- The event source id for an event source, from the vars that read TIKTOK_PIXEL_CODE,
    TIKTOK_APP_ID, TIKTOK_OFFLINE_EVENT_SET_ID and TIKTOK_CRM_EVENT_SET_ID. Empty when unset:
    such events are excluded with reason missing_event_source_id. -#}
{% macro tiktok_event_source_id(event_source_expr) -%}
    nullif(case {{ event_source_expr }}
        when 'web' then '{{ var("tiktok_pixel_code") | trim }}'
        when 'app' then '{{ var("tiktok_app_id") | trim }}'
        when 'offline' then '{{ var("tiktok_offline_event_set_id") | trim }}'
        when 'crm' then '{{ var("tiktok_crm_event_set_id") | trim }}'
    end, '')
{%- endmacro %}
