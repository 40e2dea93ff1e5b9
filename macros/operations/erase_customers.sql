{#- A run-operation (macros/operations: commands, not SQL expressions; tests/python/test_erasure.py
    runs it). Honour erasure requests in what was already built:

        dbt run-operation tiktok_erase_customers [--args '{dry_run: true}']

    For every customer with an erasure request (int_customer_privacy.is_erased, as of now or var
    tiktok_as_of) it
      - removes the identifiers (hashed keys, click id, cookie, ip, user agent, url, device ids,
        places, locale) from their rows of tiktok_events_outbox and marks them is_erased: the
        sender never sends such a row. This is the only change the append-only outbox receives;
      - clears payload_sha256 (a digest of the event as sent, identifiers included) of their
        receipts in tiktok_delivery_receipts;
      - removes the same identifiers from their rows of int_conversions,
        int_conversions_attributed and int_tiktok_events_candidates, and deletes their row of
        int_customer_identities (later builds neither hash them nor send them: `erased`);
      - logs the run, with its counts, in tiktok_erasure_runs (target schema), dry runs included.
    Rows already erased are left as they are, so a second run changes nothing. Erase the
    customer's rows in your own source tables too: their staging views read them as they are.
    README, "Consent and erasure". -#}
{% macro tiktok_erase_customers(dry_run=false) %}
    {%- if target.type == 'spark' -%}
        {{ exceptions.raise_compiler_error(
            "tiktok_erase_customers updates tables in place, which Spark's parquet tables cannot: "
            ~ "use Delta or Iceberg tables (+file_format), or rebuild the tables without the customers") }}
    {%- endif -%}
    {%- set identifier_columns = [
        'email_sha256', 'phone_sha256', 'external_id_sha256', 'first_name_sha256', 'last_name_sha256',
        'zip_code_sha256', 'ttclid', 'ttp', 'ip', 'user_agent', 'page_url', 'source_ip',
        'source_user_agent', 'idfa', 'idfv', 'gaid', 'city', 'state', 'country', 'locale'] -%}
    {%- set outbox = tiktok_outbox.existing(ref('tiktok_events_outbox')) -%}
    {%- if outbox is none -%}
        {{ exceptions.raise_compiler_error("tiktok_events_outbox not found: run `dbt build` first") }}
    {%- endif -%}
    {%- if 'is_erased' not in tiktok_outbox.column_names(outbox) -%}
        {{ exceptions.raise_compiler_error(
            "tiktok_events_outbox (" ~ outbox ~ ") has no is_erased column yet: run `dbt build` once, which adds it") }}
    {%- endif -%}
    {%- set erased -%}
        select customer_id from {{ ref('int_customer_privacy') }} where is_erased
    {%- endset -%}
    {%- set conversions -%}
        select conversion_id from {{ ref('int_conversions') }} where customer_id in ({{ erased }})
    {%- endset -%}
    {%- set outbox_pending -%}
        conversion_id in ({{ conversions }}) and (is_erased is null or not is_erased)
    {%- endset -%}
    {%- set receipts = tiktok_outbox.existing(source('tiktok_delivery', 'tiktok_delivery_receipts')) -%}
    {%- set receipts_pending -%}
        payload_sha256 is not null and exists (
            select 1 from {{ outbox }} as erased_row
            where erased_row.conversion_id in ({{ conversions }})
              and erased_row.event_source_id = {{ receipts.identifier if receipts else 'r' }}.event_source_id
              and erased_row.event = {{ receipts.identifier if receipts else 'r' }}.event
              and erased_row.event_id = {{ receipts.identifier if receipts else 'r' }}.event_id)
    {%- endset -%}

    {%- set customers = tiktok_outbox.count_rows('(' ~ erased ~ ') as erased_customers') -%}
    {%- set outbox_rows = tiktok_outbox.count_rows(outbox ~ ' where ' ~ outbox_pending) -%}
    {%- set receipt_rows = tiktok_outbox.count_rows(receipts ~ ' where ' ~ receipts_pending) if receipts else 0 -%}
    {{ log("tiktok_erase_customers: " ~ customers ~ " customer(s) with an erasure request; "
           ~ outbox_rows ~ " outbox row(s) and " ~ receipt_rows ~ " receipt(s) to erase"
           ~ (" (dry run: nothing changed)" if dry_run else ""), info=true) }}

    {%- if not dry_run -%}
        {%- call statement('tiktok_erase_outbox') -%}
            update {{ outbox }} set {{ tiktok_outbox.null_assignments(outbox, identifier_columns) }}, is_erased = true
            where {{ outbox_pending }}
        {%- endcall -%}
        {%- if receipts -%}
            {%- call statement('tiktok_erase_receipts') -%}
                update {{ receipts }} set payload_sha256 = null where {{ receipts_pending }}
            {%- endcall -%}
        {%- endif -%}
        {%- for name in ['int_conversions', 'int_conversions_attributed', 'int_tiktok_events_candidates'] -%}
            {%- set relation = tiktok_outbox.existing(ref(name)) -%}
            {%- if relation is not none -%}
                {%- call statement('tiktok_erase_' ~ name) -%}
                    update {{ relation }} set {{ tiktok_outbox.null_assignments(relation, identifier_columns) }}
                    where conversion_id in ({{ conversions }})
                {%- endcall -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set identities = tiktok_outbox.existing(ref('int_customer_identities')) -%}
        {%- if identities is not none -%}
            {%- call statement('tiktok_erase_identities') -%}
                delete from {{ identities }} where customer_id in ({{ erased }})
            {%- endcall -%}
        {%- endif -%}
    {%- endif -%}

    {%- set log_relation = api.Relation.create(database=target.database, schema=target.schema, identifier='tiktok_erasure_runs') -%}
    {%- if tiktok_outbox.existing(log_relation) is none -%}
        {%- call statement('tiktok_erasure_runs_table') -%}
            create table {{ log_relation }} (
                run_at {{ dbt.type_timestamp() }},
                dry_run {{ dbt.type_boolean() }},
                customers {{ dbt.type_bigint() }},
                outbox_rows {{ dbt.type_bigint() }},
                receipt_rows {{ dbt.type_bigint() }}
            )
        {%- endcall -%}
    {%- endif -%}
    {%- call statement('tiktok_erasure_runs_row') -%}
        insert into {{ log_relation }} (run_at, dry_run, customers, outbox_rows, receipt_rows)
        values ({{ tiktok_outbox.tiktok_as_of() }}, {{ 'true' if dry_run else 'false' }}, {{ customers }}, {{ outbox_rows }}, {{ receipt_rows }})
    {%- endcall -%}
    {%- do adapter.commit() -%}
{% endmacro %}


{#- `relation` when the warehouse has it, else none. -#}
{% macro existing(relation) -%}
    {{ return(adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier)) }}
{%- endmacro %}


{#- The lower-case column names of an existing relation. -#}
{% macro column_names(relation) -%}
    {{ return(adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list) }}
{%- endmacro %}


{#- `c1 = null, c2 = null, ...` for the `columns` the relation has. -#}
{% macro null_assignments(relation, columns) -%}
    {%- set present = tiktok_outbox.column_names(relation) -%}
    {%- set assignments = [] -%}
    {%- for column in columns if column in present -%}
        {%- do assignments.append(column ~ ' = null') -%}
    {%- endfor -%}
    {{- assignments | join(', ') -}}
{%- endmacro %}


{#- The number of rows of `from_clause` (a relation, or a subquery with its alias, and an optional
    where clause). -#}
{% macro count_rows(from_clause) -%}
    {%- set result = run_query('select count(*) from ' ~ from_clause) -%}
    {{ return(result.columns[0].values()[0] | int) }}
{%- endmacro %}
