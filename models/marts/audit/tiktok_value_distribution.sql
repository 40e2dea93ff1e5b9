{#- Distribution of the values sent, per event, experiment cell and week of the conversion:
    count, mean, stddev, coefficient of variation, p10/p50/p90/p99, share zero, share capped, and
    the drift of the mean against the previous week. -#}

with outbox as (
    select
        outbox.*,
        cast({{ dbt.date_trunc('week', 'outbox.converted_at') }} as date) as conversion_week,
        cast(outbox.value as {{ tiktok_outbox.type_double() }}) as value_number
    from {{ ref('tiktok_events_outbox') }} as outbox
),

weekly as (
    select
        event,
        experiment_cell,
        conversion_week,
        count(*) as events,
        count(value_number) as events_with_value,
        avg(value_number) as mean_value,
        stddev_samp(value_number) as stddev_value,
        {{ tiktok_outbox.percentile('value_number', 0.1) }} as p10_value,
        {{ tiktok_outbox.percentile('value_number', 0.5) }} as p50_value,
        {{ tiktok_outbox.percentile('value_number', 0.9) }} as p90_value,
        {{ tiktok_outbox.percentile('value_number', 0.99) }} as p99_value,
        avg(case when value_number = 0 then 1.0 when value_number is not null then 0.0 end) as share_zero,
        avg(case when value_number is null then null when is_value_capped then 1.0 else 0.0 end) as share_capped
    from outbox
    group by event, experiment_cell, conversion_week
),

final as (
    select
        weekly.*,
        stddev_value / nullif(abs(mean_value), 0) as coefficient_of_variation,
        lag(mean_value) over (partition by event, experiment_cell order by conversion_week) as previous_week_mean,
        mean_value / nullif(
            lag(mean_value) over (partition by event, experiment_cell order by conversion_week), 0
        ) - 1 as week_over_week_drift
    from weekly
)

select * from final
