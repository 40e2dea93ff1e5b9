{#- The outbox_seq of the rows this build appends to tiktok_events_outbox: the build's start in
    microseconds since the epoch (dbt's run_started_at, rendered as a literal: the same SQL on
    every engine), or one more than the highest outbox_seq already in the outbox when the clock
    says less (a clock set back, a build in the same microsecond). So it only ever rises, also
    after the outbox is dropped and built again: rows appended then are above every mark an
    earlier run of the sender read through, and are read again rather than skipped. Builds of
    one outbox run one at a time, as dbt's incremental append assumes. -#}
{% macro outbox_seq() -%}
    {%- set build_us = (run_started_at.timestamp() * 1000000) | int -%}
    {%- if is_incremental() -%}
        greatest({{ build_us }}, (select coalesce(max(outbox_seq), 0) + 1 from {{ this }}))
    {%- else -%}
        {{ build_us }}
    {%- endif -%}
{%- endmacro %}
