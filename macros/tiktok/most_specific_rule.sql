{#- For every row of `keys` (a relation, or a parenthesised select, whose columns are the keys),
    the `value` of the most specific row of `rules` that matches it: the rules whose `exact`
    columns equal the keys' and whose `wildcards` columns equal the keys' or are '*'; among
    those, a wildcard column that is not '*' counts more the earlier it comes in `wildcards`
    (weights 2^(n-1) .. 1, so the first outweighs all the later ones together), ties broken by
    the lowest value. `exact` and `wildcards` are lists of (key column, rule column) pairs;
    `where` filters the rules. Returns the key columns (exact ones first) and `value`, one row
    per distinct key that some rule matches. A missing key is best given as '*', which matches
    the wildcard rows only, as the missing key itself would. Used by the event-source routes and
    the calibration factors (README, "Event sources", "Modeled values"). -#}
{% macro most_specific_rule(keys, rules, wildcards, value, exact=[], where=none) -%}
    {%- set key_pairs = exact + wildcards -%}
    select {% for key, _ in key_pairs %}ranked.{{ key }}, {% endfor %}ranked.{{ value }}
    from (
        select
            {% for key, _ in key_pairs %}keys.{{ key }}, {% endfor %}rules.{{ value }},
            row_number() over (
                partition by {% for key, _ in key_pairs %}keys.{{ key }}{% if not loop.last %}, {% endif %}{% endfor %}
                order by
                    {% for _, column in wildcards %}case when rules.{{ column }} = '*' then 0 else {{ 2 ** (wildcards | length - loop.index) }} end{% if not loop.last %} + {% endif %}{% endfor %} desc,
                    rules.{{ value }}
            ) as row_rank
        from {{ keys }} as keys
        inner join {{ rules }} as rules
            on {% for key, column in exact %}rules.{{ column }} = keys.{{ key }} and {% endfor -%}
            {% for key, column in wildcards %}rules.{{ column }} in (keys.{{ key }}, '*'){% if not loop.last %} and {% endif %}{% endfor %}
        {%- if where %}
        where {{ where }}
        {%- endif %}
    ) as ranked
    where ranked.row_rank = 1
{%- endmacro %}
