{#- The App Tracking Transparency status TikTok's app events take [peer: Segment's TikTok App
    Events destination]: AUTHORIZED, DENIED, NOT_DETERMINED or RESTRICTED on iOS, read in any
    case with spaces, hyphens or underscores, or as ATTrackingManager's raw value (3, 2, 0, 1);
    NOT_APPLICABLE on any other platform; null when the platform is unknown, or an iOS status is
    missing or not one of these. -#}
{% macro normalize_att_status(expr, platform) -%}
    {%- set cleaned = "upper(replace(replace(" ~ tiktok_outbox.trim_whitespace('cast(' ~ expr ~ ' as ' ~ dbt.type_string() ~ ')') ~ ", ' ', '_'), '-', '_'))" -%}
    case
        when {{ platform }} is null then null
        when {{ platform }} <> 'ios' then 'NOT_APPLICABLE'
        when {{ cleaned }} = 'AUTHORIZED' or {{ cleaned }} = '3' then 'AUTHORIZED'
        when {{ cleaned }} = 'DENIED' or {{ cleaned }} = '2' then 'DENIED'
        when {{ cleaned }} = 'NOT_DETERMINED' or {{ cleaned }} = '0' then 'NOT_DETERMINED'
        when {{ cleaned }} = 'RESTRICTED' or {{ cleaned }} = '1' then 'RESTRICTED'
    end
{%- endmacro %}
