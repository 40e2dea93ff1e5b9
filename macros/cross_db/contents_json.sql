{#- An aggregate: the JSON array (as text) of one object per row, {"content_id", "content_name",
    "quantity", "price"}, in `line_order`, built by the warehouse's own JSON functions, so every
    string is escaped as JSON requires. Key order and number formatting vary by engine, and
    Spark's objects carry the line's position first: the sender parses the array and sends only
    those four keys, so what reaches TikTok is the same. -#}
{% macro contents_json(line_order, content_id, content_name, quantity, price) -%}
    {{ return(adapter.dispatch('contents_json', 'tiktok_outbox')(line_order, content_id, content_name, quantity, price)) }}
{%- endmacro %}

{% macro default__contents_json(line_order, content_id, content_name, quantity, price) -%}
    cast(json_agg(json_build_object('content_id', {{ content_id }}, 'content_name', {{ content_name }}, 'quantity', {{ quantity }}, 'price', {{ price }}) order by {{ line_order }}) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__contents_json(line_order, content_id, content_name, quantity, price) -%}
    cast(to_json(list({'content_id': {{ content_id }}, 'content_name': {{ content_name }}, 'quantity': {{ quantity }}, 'price': {{ price }}} order by {{ line_order }})) as varchar)
{%- endmacro %}

{% macro snowflake__contents_json(line_order, content_id, content_name, quantity, price) -%}
    to_json(array_agg(object_construct_keep_null('content_id', {{ content_id }}, 'content_name', {{ content_name }}, 'quantity', {{ quantity }}, 'price', {{ price }})) within group (order by {{ line_order }}))
{%- endmacro %}

{% macro bigquery__contents_json(line_order, content_id, content_name, quantity, price) -%}
    to_json_string(array_agg(struct({{ content_id }} as content_id, {{ content_name }} as content_name, {{ quantity }} as quantity, {{ price }} as price) order by {{ line_order }}))
{%- endmacro %}

{% macro spark__contents_json(line_order, content_id, content_name, quantity, price) -%}
    to_json(array_sort(collect_list(named_struct('line', {{ line_order }}, 'content_id', {{ content_id }}, 'content_name', {{ content_name }}, 'quantity', {{ quantity }}, 'price', {{ price }}))))
{%- endmacro %}

{% macro databricks__contents_json(line_order, content_id, content_name, quantity, price) -%}
    {{ tiktok_outbox.spark__contents_json(line_order, content_id, content_name, quantity, price) }}
{%- endmacro %}
