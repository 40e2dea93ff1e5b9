{#- Values must vary (use the `where` config to pick the rows, e.g. anchor events): within each group of at least min_rows rows, the coefficient of variation
    (stddev / mean) of the column must reach var('tiktok_min_value_cv'). A constant value, the
    typical result of a broken join or a fallback applied to everything, fails. -#}
{% test value_varies(model, column_name='value', group_by=none, min_rows=10) %}
with scoped as (
    -- the test's `where` config narrows {{ model }} before this runs
    select * from {{ model }}
),

stats as (
    select
        {% if group_by %}{{ group_by }} as value_group,{% else %}'all' as value_group,{% endif %}
        count({{ column_name }}) as n_values,
        avg(cast({{ column_name }} as {{ tiktok_outbox.type_double() }})) as mean_value,
        stddev_samp(cast({{ column_name }} as {{ tiktok_outbox.type_double() }})) as stddev_value
    from scoped
    {% if group_by %}group by {{ group_by }}{% endif %}
)

select *
from stats
where n_values >= {{ min_rows }}
  and (
        mean_value is null or mean_value = 0
        or coalesce(stddev_value, 0) / abs(mean_value) < {{ var('tiktok_min_value_cv') }}
  )
{% endtest %}
