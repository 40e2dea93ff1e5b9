-- The demo seeds landed where this project's generate_schema_name (dbt's default) puts them,
-- `<target schema>_raw_first_party`, and the package's sources read them there.
{%- set customers = ref('tiktok_outbox', 'customers') %}
{%- set source_customers = source('first_party', 'customers') %}
select '{{ customers.schema }}' as seed_schema, '{{ source_customers.schema }}' as source_schema
where '{{ customers.schema }}' != '{{ target.schema }}_raw_first_party'
   or '{{ source_customers.schema }}' != '{{ customers.schema }}'
