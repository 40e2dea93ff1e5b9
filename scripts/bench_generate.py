#!/usr/bin/env python3
"""Generate the benchmark's first-party tables in DuckDB, in SQL, at any scale.

Usage::

    python scripts/bench_generate.py --events 1000000 --out-db target/bench/bench.duckdb
                                     [--schema raw_first_party] [--as-of 2026-11-25T06:00:00]
                                     [--seed 42]
    python scripts/bench_generate.py --out-db target/bench/bench.duckdb --append-share 0.01

The seven source tables of ``models/staging/first_party/_first_party__sources.yml`` (same
columns, same types as ``seeds/demo/_demo__seeds.yml``) are created in ``--schema`` and filled
by DuckDB SQL: every row comes from ``range()``, every random choice from ``hash()`` of the row's
key and a tag salted with ``--seed``, so the same arguments give the same rows. No row is built
in Python. The dbt project reads them with ``--vars '{tiktok_load_demo_data: false}'``.

The shape follows ``scripts/generate_demo_data.py`` (whose constants it reuses: countries,
currencies, FX, tax rates, phone number plans, names, user agents, URLs, prices): one
advertiser with ecommerce orders, a subscription app (trials, subscriptions, SDK events) and
SaaS signups and activations; 18 months of growing acquisition; web sessions with TikTok clicks
(ttclid), the _ttp cookie and the pixel's event id around every web conversion; pLTV scores by
two model versions. The deliberate flaws are the demo's, at the demo's rates: emails in mixed
case, padded, non-ASCII, pre-hashed, invalid, blank or null; phones in national and
international formats (``+44 20 ...``, ``0044 ...``, E.164, dashed), foreign, invalid, blank or
null; country codes in lower case, padded or null; guest orders, lower-case, unknown (``XYZ``)
or null currencies, zero and negative net revenue, cancellations and refunds, orders and
signups dated after as-of, pairs of orders sharing one pixel event id; negative, NaN and 1e9
pLTV scores, scores dated after as-of and scores of unknown customers. The row-level details
are simplified (for instance repeat orders are evenly spaced with jitter rather than a Poisson
process), which does not change what the models have to do.

Size: ``--events N`` picks the number of customers so that about N conversions fall in the
last 28 days and pass every check, i.e. about N rows reach ``tiktok_events_outbox``
(``CUSTOMERS_PER_EVENT``, measured on this generator). The whole data set holds about
``ROWS_PER_EVENT`` source rows per outbox event, most of them history the outbox excludes.

``--append-share S`` adds new conversions to tables this script generated before: about S x
the outbox size of new recent conversions (new ids, all within the hour before as-of): repeat
orders of existing customers with their checkout sessions, and new customers with their first
order, trial or signup, sessions, app events. That is the input of the incremental rebuild.
"""

from __future__ import annotations

import argparse
import base64
import math
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

import generate_demo_data as demo

# Customers per outbox event and source rows per outbox event, measured with this generator
# (seed 42): 100,000 requested events gave about 100,000 outbox rows.
CUSTOMERS_PER_EVENT = 2.09
ROWS_PER_EVENT = 18
META_SCHEMA = "bench_meta"
ORDER_SLOTS = 48  # order keys are customer * ORDER_SLOTS + j; j < 40 history, 40.. appends
MAX_ORDERS = 40
DAY = demo.DAY
HOUR = demo.HOUR
MINUTE = demo.MINUTE
TOKEN_POOL = base64.urlsafe_b64encode(random.Random("tiktok-outbox-bench").randbytes(48_000)).decode()

TABLE_DDL: dict[str, str] = {
    "customers": """customer_id varchar, email varchar, phone varchar, country_code varchar,
        created_at timestamp, updated_at timestamp""",
    "orders": """order_id varchar, customer_id varchar, ordered_at timestamp, status varchar,
        currency varchar, gross_revenue decimal(18,2), discount_amount decimal(18,2),
        net_revenue decimal(18,2), refunded_amount decimal(18,2), updated_at timestamp""",
    "web_sessions": """session_id varchar, customer_id varchar, started_at timestamp,
        ttclid varchar, ttp varchar, ip varchar, user_agent varchar, page_url varchar,
        order_id varchar, signup_id varchar, pixel_event_id varchar""",
    "subscriptions": """subscription_id varchar, customer_id varchar, plan varchar,
        trial_started_at timestamp, subscribed_at timestamp, cancelled_at timestamp,
        currency varchar, price decimal(18,2), updated_at timestamp""",
    "app_events": """app_event_id varchar, customer_id varchar, subscription_id varchar,
        event_name varchar, occurred_at timestamp, platform varchar, ip varchar,
        user_agent varchar""",
    "signups": """signup_id varchar, customer_id varchar, signed_up_at timestamp, plan varchar,
        activated_at timestamp, seats integer, updated_at timestamp""",
    "pltv_predictions": """customer_id varchar, predicted_ltv double, currency varchar,
        model_version varchar, scored_at timestamp, horizon_days integer""",
}


@dataclass(frozen=True)
class Batch:
    """What one generation step adds: customers [first, last), guests, flawed rows, appends."""

    first_customer: int
    last_customer: int
    seed: int
    scale: float  # demo scale equivalent (customers / 3000): counts of deliberate flaws
    append_round: int  # 0: the initial data set; 1..: appended batches
    append_share: float = 0.0

    @property
    def customers(self) -> int:
        return self.last_customer - self.first_customer


# --------------------------------------------------------------------------------------------
# SQL building blocks
# --------------------------------------------------------------------------------------------


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(sql_str(i) for i in items) + "]"


def macros(seed: int, as_of: datetime) -> list[str]:
    """Pseudo-random draws keyed by (row key, tag), and rendering of 'seconds before as-of'."""
    salt = sql_str(f"tiktok-outbox-bench/{seed}/")
    return [
        # hash(k, tag) of two keys only xor-combines their hashes, so draws of one key under two
        # tags would be correlated; hashing the combination again mixes them
        f"create or replace temp macro h(k, tag) as hash(hash(k, {salt} || tag))",
        "create or replace temp macro u(k, tag) as (h(k, tag) >> 11)::double / 9007199254740992.0",
        "create or replace temp macro pick(k, tag, arr) as arr[1 + (h(k, tag) % len(arr))::bigint]",
        "create or replace temp macro pickn(k, tag, arr, n) as arr[1 + (h(k, tag) % n)::bigint]",
        "create or replace temp macro uni(k, tag, lo, hi) as lo + (hi - lo) * u(k, tag)",
        """create or replace temp macro gauss(k, tag) as
            sqrt(-2 * ln(1 - u(k, tag || ':a'))) * cos(2 * pi() * u(k, tag || ':b'))""",
        f"""create or replace temp macro ts(ago) as
            timestamp '{as_of:%Y-%m-%d %H:%M:%S}' - to_seconds(ago::bigint)""",
        # n (up to 96) base64url characters: two slices of a fixed random pool at drawn offsets
        # (encoding fresh random bytes per row costs ten times more)
        f"""create or replace temp macro b64(k, tag, n) as
            substr('{TOKEN_POOL}', 1 + (h(k, tag) % {len(TOKEN_POOL) - 64})::bigint, least(n, 32)::bigint)
            || substr('{TOKEN_POOL}', 1 + (h(k, tag || ':2') % {len(TOKEN_POOL) - 64})::bigint,
                      greatest(n - 32, 0)::bigint)""",
        """create or replace temp macro uuid4(k, tag) as printf('%08x-%04x-4%03x-%04x-%012x',
            h(k, tag) >> 32, h(k, tag) & 65535, h(k, tag || ':2') & 4095,
            32768 | (h(k, tag || ':2') >> 48) & 16383, h(k, tag || ':3') & 281474976710655)""",
        # seconds before as-of a customer arrives: 30 % in the last 28 days, growing before that
        f"""create or replace temp macro acquisition_ago(k, tag) as (case
            when u(k, tag || ':r') < 0.30 then u(k, tag || ':d') * {demo.RECENT_DAYS}
            else {demo.RECENT_DAYS} + {demo.HISTORY_DAYS - demo.RECENT_DAYS}
                 * pow(u(k, tag || ':d'), 1.8) end) * {DAY} + u(k, tag || ':h') * {HOUR}""",
        # minor units per major unit of a currency
        f"""create or replace temp macro minor(cur) as
            case when cur in ({", ".join(sql_str(c) for c in demo.ZERO_DECIMAL_CURRENCIES)})
            then 1 else 100 end""",
        """create or replace temp macro random_ip(k, tag) as case
            when u(k, tag || ':v6') < 0.1 then pick(k, tag || ':p6', (select v6 from ref_web))
                || printf(':%x:%x:%x:%x:%x:%x', h(k, tag || ':1') & 65535,
                   h(k, tag || ':2') & 65535, h(k, tag || ':3') & 65535,
                   h(k, tag || ':4') & 65535, h(k, tag || ':5') & 65535, h(k, tag || ':6') & 65535)
            else pick(k, tag || ':o', (select octets from ref_web))::varchar || '.'
                || (h(k, tag || ':1') % 256) || '.' || (h(k, tag || ':2') % 256) || '.'
                || (1 + h(k, tag || ':3') % 254) end""",
    ]


def reference_sql() -> list[str]:
    """Small lookup tables (countries, phone plans, names, web context) from the demo's constants."""
    country_rows, name_rows, plan_rows = [], [], []
    for code, weight in demo.COUNTRY_WEIGHTS.items():
        currency = demo.COUNTRY_CURRENCY[code]
        firsts, lasts = demo.NAME_POOLS[demo.COUNTRY_LANGUAGE[code]]
        plans = demo.PHONE_PLANS[code]
        prefixes_nat, prefixes_intl, suffixes = zip(*(split_plan(p) for p in plans), strict=True)
        monthly, annual = demo.APP_PRICES[currency]
        name_rows += [f"({sql_str(code)}, 'first', {i}, {sql_str(name)})" for i, name in enumerate(firsts)]
        name_rows += [f"({sql_str(code)}, 'last', {i}, {sql_str(name)})" for i, name in enumerate(lasts)]
        plan_rows += [f"({sql_str(code)}, {i + 1}, {sql_str(nat)}, {sql_str(intl)}, {sql_str(suffix)})"
                      for i, (nat, intl, suffix) in enumerate(zip(prefixes_nat, prefixes_intl, suffixes, strict=True))]
        country_rows.append(
            f"({sql_str(code)}, {int(weight)}, {sql_str(currency)}, {demo.FX_PER_USD[currency]},"
            f" {demo.TAX_RATE[code]}, {sql_str(demo.COUNTRY_EMAIL_DOMAIN[code])}, {monthly}, {annual},"
            f" {code in demo.NANP}, {code in demo.IDD_00_COUNTRIES}, {len(firsts)}, {len(lasts)},"
            f" {len(plans)})"
        )
    weighted = [code for code, w in demo.COUNTRY_WEIGHTS.items() for _ in range(int(w))]
    return [
        f"""create or replace temp table ref_country as select * from (values {", ".join(country_rows)})
            as t(country, weight, currency, fx, tax, domain, price_monthly, price_annual, is_nanp,
                 dials_00, n_firsts, n_lasts, n_plans)""",
        # names and number plans one per row: joined on a drawn index, never copied as lists
        f"""create or replace temp table ref_name as select * from (values {", ".join(name_rows)})
            as t(country, part, ix, name)""",
        f"""create or replace temp table ref_plan as select * from (values {", ".join(plan_rows)})
            as t(country, ix, prefix_nat, prefix_intl, suffix)""",
        f"create or replace temp table ref_pick as select {sql_list(weighted)} as countries,"
        f" {sql_list(list(demo.COUNTRY_WEIGHTS))} as all_countries",
        f"""create or replace temp table ref_web as select
            {sql_list(demo.DESKTOP_USER_AGENTS)} as desktop_ua,
            {sql_list(demo.MOBILE_USER_AGENTS)} as mobile_ua,
            {sql_list(demo.IN_APP_USER_AGENTS)} as in_app_ua,
            {sql_list(demo.APP_USER_AGENTS["ios"])} as ios_ua,
            {sql_list(demo.APP_USER_AGENTS["android"])} as android_ua,
            {list(demo.IPV4_FIRST_OCTETS)} as octets, {sql_list(demo.IPV6_PREFIXES)} as v6,
            {sql_list(demo.SHOP_PATHS)} as shop_paths, {sql_list(demo.SAAS_PATHS)} as saas_paths,
            {sql_list(demo.TIKTOK_CAMPAIGNS)} as campaigns,
            {sql_list(demo.ORGANIC_QUERIES)} as organic,
            {sql_list(demo.INVALID_PHONES)} as invalid_phones,
            {sql_list(demo.GENERIC_EMAIL_DOMAINS)} as generic_domains""",
        """create or replace temp table ref_currency as
            select distinct currency, fx, price_monthly, price_annual from ref_country""",
    ]


def reference_lists() -> dict[str, str]:
    """The lists of ref_web and ref_pick as SQL literals: a constant list indexed per row is
    cheap, a list from a one-row subquery is copied into every row first."""
    weighted = [code for code, w in demo.COUNTRY_WEIGHTS.items() for _ in range(int(w))]
    return {
        "desktop_ua": sql_list(demo.DESKTOP_USER_AGENTS),
        "mobile_ua": sql_list(demo.MOBILE_USER_AGENTS),
        "in_app_ua": sql_list(demo.IN_APP_USER_AGENTS),
        "ios_ua": sql_list(demo.APP_USER_AGENTS["ios"]),
        "android_ua": sql_list(demo.APP_USER_AGENTS["android"]),
        "octets": str(list(demo.IPV4_FIRST_OCTETS)),
        "v6": sql_list(demo.IPV6_PREFIXES),
        "shop_paths": sql_list(demo.SHOP_PATHS),
        "saas_paths": sql_list(demo.SAAS_PATHS),
        "campaigns": sql_list(demo.TIKTOK_CAMPAIGNS),
        "organic": sql_list(demo.ORGANIC_QUERIES),
        "invalid_phones": sql_list(demo.INVALID_PHONES),
        "generic_domains": sql_list(demo.GENERIC_EMAIL_DOMAINS),
        "countries": sql_list(weighted),
        "all_countries": sql_list(list(demo.COUNTRY_WEIGHTS)),
    }


LIST_PICK = re.compile(r"pick\(([^()]+?), ('[^']*'), \(select (\w+) from ref_(?:web|pick)\)\)")
NUMBER_PICK = re.compile(r"pick\(([^()]+?), ('[^']*'), \[([0-9., ]+)\]\)")
LIST_REFERENCE = re.compile(r"\(select (\w+) from ref_(?:web|pick)\)")


def inline_lists(sql: str) -> str:
    """Inline the reference lists, and give `pick` their length: `len()` of a list argument
    costs more per row than the pick itself."""
    lists = reference_lists()
    sql = LIST_PICK.sub(lambda m: f"pickn({m[1]}, {m[2]}, {lists[m[3]]}, {list_length(m[3])})", sql)
    sql = NUMBER_PICK.sub(lambda m: f"pickn({m[1]}, {m[2]}, [{m[3]}], {len(m[3].split(','))})", sql)
    return LIST_REFERENCE.sub(lambda m: lists[m[1]], sql)


def list_length(name: str) -> int:
    weighted = sum(int(w) for w in demo.COUNTRY_WEIGHTS.values())
    lengths = {"countries": weighted, "all_countries": len(demo.COUNTRY_WEIGHTS),
               "octets": len(demo.IPV4_FIRST_OCTETS), "v6": len(demo.IPV6_PREFIXES)}
    if name in lengths:
        return lengths[name]
    return len(reference_lists()[name].split("', '"))


def split_plan(plan: tuple[str, str]) -> tuple[str, str, str]:
    """(national prefix, international prefix, shared suffix) of a demo number range: both
    formats end with the same placeholder run, so one fill serves both."""
    national, international = plan
    first = min(i for i, ch in enumerate(national) if ch in demo.DIGIT_CLASSES)
    suffix = national[first:]
    if not international.endswith(suffix):
        raise ValueError(f"number plan formats differ after the first placeholder: {plan}")
    return national[:first], international[: len(international) - len(suffix)], suffix


def few(base: int, scale: float) -> int:
    return demo.few(base, scale)


# --------------------------------------------------------------------------------------------
# Customers and their latent traits
# --------------------------------------------------------------------------------------------


def latent_sql(batch: Batch) -> str:
    """One row per new customer: country, business lines, arrival, spend traits."""
    if batch.append_round == 0:
        created = "acquisition_ago(n, 'acq')"
    else:  # appended customers arrive in the last hour
        created = f"u(n, 'acq{batch.append_round}') * {HOUR - 2 * MINUTE} + {MINUTE}"
    return f"""
    create or replace temp table latent as
    with base as (
        select n, pick(n, 'country', (select countries from ref_pick)) as country,
               ({created})::bigint as created_ago, gauss(n, 'z') as z,
               u(n, 'line') as line_roll
        from range({batch.first_customer}, {batch.last_customer}) as t(n)
    )
    select base.n, printf('C%08d', base.n) as customer_id, base.country, c.currency, c.fx,
           base.created_ago, base.z,
           line_roll < 0.59 or u(n, 'x:ecom') < {demo.CROSS_LINE_SHARE} as is_ecom,
           (line_roll >= 0.59 and line_roll < 0.81) or u(n, 'x:sub') < {demo.CROSS_LINE_SHARE} as is_sub,
           line_roll >= 0.81 or u(n, 'x:saas') < {demo.CROSS_LINE_SHARE} as is_saas,
           48.0 * exp(0.30 * z + 0.25 * gauss(n, 'aov')) as aov_usd,
           5.5 * exp(0.45 * z + 0.35 * gauss(n, 'rep')) as repeat_rate,
           {demo.ACTIVE_LIFETIME_DAYS} * exp(0.35 * z) as lifetime_days
    from base join ref_country as c using (country)
    """


def customers_sql(schema: str) -> str:
    # kinds by cumulative weight (demo.EMAIL_KIND_WEIGHTS, PHONE_KIND_WEIGHTS, ...)
    return f"""
    insert into {schema}.customers by name
    with drawn as (
        select l.*, c.domain, c.is_nanp, (h(n, 'first') % c.n_firsts)::integer as first_ix,
               (h(n, 'last') % c.n_lasts)::integer as last_ix
        from latent as l join ref_country as c using (country)
    ),
    named as (
        select d.*, fn.name as first_name, ln.name as last_name,
               u(n, 'email_kind') * 100 as email_roll, u(n, 'phone_kind') * 100 as phone_roll,
               u(n, 'cc_kind') * 100 as cc_roll
        from drawn as d
        join ref_name as fn on fn.country = d.country and fn.part = 'first' and fn.ix = d.first_ix
        join ref_name as ln on ln.country = d.country and ln.part = 'last' and ln.ix = d.last_ix
    ),
    emails as (
        select *,
            regexp_replace(replace(strip_accents(lower(first_name)), 'ß', 'ss'), '[ '']', '', 'g') as f,
            regexp_replace(replace(strip_accents(lower(last_name)), 'ß', 'ss'), '[ '']', '', 'g') as la,
            case when u(n, 'dom') < 0.5 then domain
                 else pick(n, 'gdom', (select generic_domains from ref_web)) end as email_domain
        from named
    ),
    clean as (
        select *,
            case h(n, 'style') % 6
                when 0 then f || la when 1 then f[1] || '.' || la when 2 then f || '_' || la
                when 3 then f || '.' || la || (1 + h(n, 'style:d') % 98)::varchar
                else f || '.' || la end || (n % 100000)::varchar as local_part
        from emails
    ),
    cased as (
        select *, local_part || '@' || email_domain as email_clean,
            upper(local_part[1]) || local_part[2:] || '@' || case when u(n, 'case') < 0.4
                then upper(email_domain) else upper(email_domain[1]) || email_domain[2:] end
                as email_mixed,
            case when cc_roll < 92 then country when cc_roll < 94.5 then lower(country)
                 when cc_roll < 97 then pick(n, 'pad', [' ' || lower(country), country || ' ',
                     ' ' || upper(country[1]) || lower(country[2]) || ' '])
            end as country_code_raw
        from clean
    ),
    phoned as (
        select *,
            case when phone_roll < 40 and country_code_raw is not null then 'national'
                 when phone_roll < 64 then 'international'
                 when phone_roll < 66 then 'foreign'
                 when phone_roll < 70 then 'invalid' when phone_roll < 72 then 'blank'
                 else 'null' end as phone_kind,
            case when phone_roll >= 64 and phone_roll < 66
                 then pick(n, 'foreign', list_filter((select all_countries from ref_pick), x -> x <> country))
                 else country end as number_country
        from cased
    ),
    phoned_plan as (
        select p.*, rc.is_nanp as nc_nanp, (1 + h(n, 'plan') % rc.n_plans)::integer as plan_ix
        from phoned as p join ref_country as rc on rc.country = p.number_country
    ),
    planned as (
        select p.*, rp.prefix_nat, rp.prefix_intl, rp.suffix,
               lpad(h(n, 'digits1')::varchar, 20, '0')[2:] || lpad(h(n, 'digits2')::varchar, 20, '0')[2:] as digits
        from phoned_plan as p
        join ref_plan as rp on rp.country = p.number_country and rp.ix = p.plan_ix
    ),
    filled as (
        select *,
            array_to_string(list_transform(string_split(suffix, ''), (ch, ix) ->
                case ch when '#' then digits[ix]
                        when 'N' then (2 + digits[ix]::int % 8)::varchar
                        when 'P' then (1 + digits[ix]::int % 8)::varchar
                        when 'Q' then (1 + digits[ix]::int % 5)::varchar
                        else ch end), '') as subscriber
        from planned
    ),
    numbers as (
        select *, prefix_nat || subscriber as national, prefix_intl || subscriber as international,
               regexp_replace(prefix_nat || subscriber, '[^0-9]', '', 'g') as national_digits,
               u(n, 'variant') as variant_roll
        from filled
    )
    select customer_id,
        case when email_roll < 72 then email_clean
             when email_roll < 80 then email_mixed
             when email_roll < 84 then repeat(' ', 1 + (h(n, 'pad1') % 2)::bigint) || email_mixed
                                       || repeat(' ', (h(n, 'pad2') % 3)::bigint)
             when email_roll < 88 and first_name || last_name <> strip_accents(first_name || last_name)
                 then upper(first_name) || '.' || replace(last_name, ' ', '') || '@Correo.'
                      || upper(email_domain[1]) || email_domain[2:]
             when email_roll < 88 then email_clean
             when email_roll < 90 then sha256(email_clean)
             when email_roll < 93 then pick(n, 'invalid', [local_part || '@', 'n/a',
                 local_part || '@@' || email_domain, 'no-email', local_part || '.' || email_domain])
             when email_roll < 94 then repeat(' ', 1 + (h(n, 'blank') % 3)::bigint)
        end as email,
        case phone_kind
            when 'national' then case
                when not nc_nanp then case when variant_roll < 0.85 then national else national_digits end
                when variant_roll < 0.55 then national
                when variant_roll < 0.75
                    then national_digits[1:3] || '-' || national_digits[4:6] || '-' || national_digits[7:]
                when variant_roll < 0.90
                    then national_digits[1:3] || '.' || national_digits[4:6] || '.' || national_digits[7:]
                else national_digits end
            when 'international' then case
                when nc_nanp and variant_roll < 0.25 then replace(international, ' ', '-')
                when variant_roll < 0.45 and country_code_raw is not null
                     and country in ({", ".join(sql_str(c) for c in sorted(demo.IDD_00_COUNTRIES))})
                    then '00' || international[2:]
                when variant_roll < 0.70 then '+' || regexp_replace(international, '[^0-9]', '', 'g')
                else international end
            when 'foreign' then '+' || regexp_replace(international, '[^0-9]', '', 'g')
            when 'invalid' then pick(n, 'bad_phone', (select invalid_phones from ref_web))
            when 'blank' then repeat(' ', 1 + (h(n, 'blank_phone') % 2)::bigint)
        end as phone,
        country_code_raw as country_code,
        ts(created_ago) as created_at,
        ts(case when u(n, 'upd') < 0.6 then created_ago - u(n, 'upd:s') * greatest(created_ago, 0)
                else created_ago end) as updated_at
    from numbers
    """


# --------------------------------------------------------------------------------------------
# Ecommerce orders
# --------------------------------------------------------------------------------------------


def order_moments_sql(batch: Batch) -> str:
    """Order keys and moments (seconds before as-of) of this batch, plus gross USD amounts."""
    if batch.append_round == 0:
        guests = round(demo.BASE_COUNTS["guest_orders"] * batch.scale)
        skewed = few(8, batch.scale)
        return f"""
        create or replace temp table order_moments as
        with firsts as (
            select n, customer_id, country, currency, fx, aov_usd, repeat_rate,
                   (created_ago - case when u(n, 'o:first') < 0.75 then uni(n, 'o:fd', {MINUTE}, 20 * {MINUTE})
                                        else uni(n, 'o:fd', {HOUR}, 20 * {DAY}) end)::bigint as first_ago,
                   lifetime_days * -ln(1 - u(n, 'o:lapse')) * {DAY} as life_s,
                   365.0 * {DAY} / repeat_rate as gap_s
            from latent where is_ecom
        ),
        counted as (
            select *, greatest(0, least({MAX_ORDERS}, ceil((first_ago - greatest({MINUTE}, first_ago - life_s))
                                                     / gap_s)))::bigint as n_orders
            from firsts
        ),
        customer_orders as (
            select n * {ORDER_SLOTS} + j as okey, customer_id, country, currency, fx,
                   (first_ago - j * gap_s + case when j > 0 then (u(n * {ORDER_SLOTS} + j, 'o:jit') - 0.5)
                        * 0.8 * gap_s else 0 end)::bigint as ago,
                   greatest(12.0, aov_usd * exp(gauss(n * {ORDER_SLOTS} + j, 'o:gross') * 0.35 - 0.06)) as gross_usd,
                   'ORD-' || (100000000 + n * {ORDER_SLOTS} + j)::varchar as order_id
            from counted, unnest(range(n_orders)) as r(j)
        ),
        guest_orders as (
            select -1 - g as okey, null as customer_id, c.country, c.currency, c.fx,
                   greatest({HOUR}, acquisition_ago(-1 - g, 'o:guest'))::bigint as ago,
                   greatest(12.0, 45.0 * exp(0.45 * gauss(-1 - g, 'o:ggross'))) as gross_usd,
                   'ORD-G' || (100001 + g)::varchar as order_id
            from range({guests}) as t(g)
            join ref_country as c on c.country = pick(-1 - g, 'o:gc', (select countries from ref_pick))
        ),
        skewed_orders as (  -- recorded after as-of (clock skew)
            select -1000000000 - k as okey, l.customer_id, l.country, l.currency, l.fx,
                   -uni(k, 'o:skew', {HOUR}, 3 * {DAY})::bigint as ago, l.aov_usd as gross_usd,
                   'ORD-S' || (100001 + k)::varchar as order_id
            from range({skewed}) as t(k)
            join latent as l on l.n = {batch.first_customer} + h(k, 'o:skewc') % {batch.customers}
        )
        select * from customer_orders where ago > {MINUTE}
        union all select * from guest_orders
        union all select * from skewed_orders
        """
    # appended: a new order within the hour of existing ecommerce customers, and the first
    # order of the new customers (ids never used before)
    j = MAX_ORDERS + batch.append_round
    # 80 % of the new conversions are repeat orders; about 62 % of customers buy online
    repeat_probability = 0.8 * batch.append_share / (CUSTOMERS_PER_EVENT * 0.62)
    return f"""
    create or replace temp table order_moments as
    with repeat_orders as (
        select n * {ORDER_SLOTS} + {j} as okey, customer_id, country, currency, fx,
               uni(n, 'o:app{j}', {MINUTE}, {HOUR})::bigint as ago,
               greatest(12.0, aov_usd * exp(gauss(n, 'o:appg{j}') * 0.35 - 0.06)) as gross_usd,
               'ORD-' || (100000000 + n * {ORDER_SLOTS} + {j})::varchar as order_id
        from existing_latent
        where is_ecom and u(n, 'o:appsel{j}') < {repeat_probability}
    ),
    first_orders as (
        select n * {ORDER_SLOTS} as okey, customer_id, country, currency, fx,
               greatest({MINUTE}, created_ago - uni(n, 'o:fd', {MINUTE}, 20 * {MINUTE}))::bigint as ago,
               greatest(12.0, aov_usd * exp(gauss(n * {ORDER_SLOTS}, 'o:gross') * 0.35 - 0.06)) as gross_usd,
               'ORD-' || (100000000 + n * {ORDER_SLOTS})::varchar as order_id
        from latent where is_ecom
    )
    select * from repeat_orders union all select * from first_orders
    """


def orders_sql(schema: str, batch: Batch) -> str:
    dup_share = 4.0 / 1300  # demo: two pairs among ~1,300 recent orders
    return f"""
    insert into {schema}.orders by name
    with amounts as (
        select m.*, (round(m.gross_usd * m.fx * minor(m.currency)))::bigint as gross,
               case when u(okey, 'o:disc') < 0.3
                    then pick(okey, 'o:discp', [0.1, 0.15, 0.2, 0.25]) else 0 end as disc_share,
               h(okey, 'o:flaw') % 1000000 as flaw_roll, u(okey, 'o:status') as status_roll,
               c.tax as tax_rate
        from order_moments as m join ref_country as c using (country)
    ),
    net as (
        select *, round(gross * disc_share)::bigint as discount,
               case when gross_usd >= {demo.FREE_SHIPPING_USD} then 0
                    else round({demo.SHIPPING_USD} * fx * minor(currency))::bigint end as shipping
        from amounts
    ),
    flawed as (  -- a few free replacements (zero) and 100 % coupons (negative net)
        select *,
            case when customer_id is not null and ago > 0 and flaw_roll < {1_000_000 * 6 // 4966}
                 then case when flaw_roll % 2 = 0 then 'zero' else 'negative' end end as flaw
        from net
    ),
    totals as (
        select *,
            case flaw when 'zero' then 0 else gross end as gross_f,
            case flaw when 'zero' then 0 when 'negative' then gross else discount end as discount_f,
            case flaw when 'zero' then 0 when 'negative' then -shipping
                 else gross - discount - round((gross - discount) * tax_rate / (1 + tax_rate))::bigint
                      - shipping end as net_f,
            (ago - uni(okey, 'o:refund_at', 2 * {DAY}, 30 * {DAY}))::bigint as refunded_ago
        from flawed
    ),
    statused as (
        select *, gross_f - discount_f as paid,
            case when status_roll < 0.03 then 'cancelled'
                 when status_roll < 0.12 and gross_f - discount_f > 0 and refunded_ago >= 0 then
                     case when status_roll < 0.075 then 'partially_refunded' else 'refunded' end
                 else 'completed' end as status
        from totals
    )
    select order_id, customer_id, ts(ago) as ordered_at, status,
        case when u(okey, 'o:cur') < 0.02 then lower(currency)
             when u(okey, 'o:cur') < 0.026 then 'XYZ'
             when u(okey, 'o:cur') < 0.031 then null else currency end as currency,
        (gross_f / minor(currency))::decimal(18,2) as gross_revenue,
        (discount_f / minor(currency))::decimal(18,2) as discount_amount,
        (net_f / minor(currency))::decimal(18,2) as net_revenue,
        (case status when 'partially_refunded'
                 then greatest(1, round(paid * uni(okey, 'o:partial', 0.1, 0.6)))
              when 'refunded' then paid else 0 end / minor(currency))::decimal(18,2) as refunded_amount,
        ts(case status
            when 'cancelled' then greatest(ago - uni(okey, 'o:upd', 5 * {MINUTE}, 2 * {DAY}), least(ago, 0))
            when 'completed' then greatest(ago - uni(okey, 'o:upd', {HOUR}, 5 * {DAY}), least(ago, 0))
            else refunded_ago end) as updated_at
    from statused
    """ + (
        "" if batch.append_round else f"""
    ;
    -- pixel bug: a few recent orders reported with one shared pixel event id (pairs)
    create or replace temp table dup_pixel as
    select okey from order_moments
    where customer_id is not null and ago > 0 and ago < {(demo.RECENT_DAYS - 1) * DAY}
      and u(okey, 'o:dup') < {dup_share}
    """
    )


# --------------------------------------------------------------------------------------------
# Subscriptions and app events
# --------------------------------------------------------------------------------------------


def subscriptions_sql(schema: str, batch: Batch) -> str:
    months = demo.MONTH_SECONDS
    return f"""
    create or replace temp table sub_rows as
    with firsts as (
        select n, customer_id, currency, z, n * 2 as skey,
               u(n, 's:plan') < 0.35 as annual, u(n, 's:trial') < 0.88 as trial,
               u(n, 's:conv') < 1 / (1 + exp(-(0.25 + 0.9 * z))) as converts,
               (created_ago - uni(n, 's:start', {MINUTE}, 3 * {HOUR}))::bigint as start0, created_ago
        from latent where is_sub
    ),
    started as (
        select * exclude (start0),
            case when start0 <= {MINUTE}
                 then (created_ago - u(n, 's:start2') * greatest(created_ago - {MINUTE}, 0))::bigint
                 else start0 end as start_ago
        from firsts
    ),
    {lifecycle_cte("first_life", "started")},
    resubs as (  -- 30 % of cancelled paying subscribers come back later, without a trial
        select n, customer_id, currency, z, n * 2 + 1 as skey,
               u(n, 's:replan') < 0.3 as annual, false as trial, true as converts,
               (cancelled_ago - uni(n, 's:back', 10 * {DAY}, 120 * {DAY}))::bigint as start_ago,
               0 as created_ago
        from first_life
        where cancelled_ago is not null and subscribed_ago is not null and u(n, 's:resub') < 0.3
    ),
    {lifecycle_cte("second_life", "(select * from resubs where start_ago > " + str(HOUR) + ")")}
    select * from first_life union all by name select * from second_life
    ;
    insert into {schema}.subscriptions by name
    select 'SUB-' || (100000000 + skey)::varchar as subscription_id, customer_id,
        case when annual then 'annual' else 'monthly' end as plan,
        ts(case when trial then start_ago end) as trial_started_at,
        ts(subscribed_ago) as subscribed_at, ts(cancelled_ago) as cancelled_at, currency,
        case when annual then price_annual else price_monthly end::decimal(18,2) as price,
        ts(case when cancelled_ago is not null then cancelled_ago
                when subscribed_ago is not null then subscribed_ago - floor((subscribed_ago)
                     / (case when annual then {365 * DAY} else {months} end))
                     * (case when annual then {365 * DAY} else {months} end)
                else start_ago end) as updated_at
    from sub_rows join ref_currency using (currency)
    """


def lifecycle_cte(name: str, source: str) -> str:
    """Trial, first paid period and cancellation of subscriptions (seconds before as-of)."""
    months = demo.MONTH_SECONDS
    return f"""{name} as (
        select s.n, s.customer_id, s.currency, s.z, s.skey, s.annual, s.trial, s.converts,
               s.start_ago, s.created_ago,
               case when sub_ago is not null and sub_ago >= 0 then sub_ago end as subscribed_ago,
               case when sub_ago is not null and sub_ago < 0 then null
                    when cancel_ago >= 0 then cancel_ago end as cancelled_ago
        from (
            select *,
                case when trial and not converts then null
                     when trial then start_ago - {demo.TRIAL_DAYS * DAY} else start_ago end as sub_ago,
                case when trial and not converts then
                         case when u(skey, 's:tcancel') < 0.7
                              then start_ago - uni(skey, 's:tc', {HOUR}, {demo.TRIAL_DAYS * DAY - HOUR}) end
                     when annual then case when u(skey, 's:acancel') < 0.4
                         then (case when trial then start_ago - {demo.TRIAL_DAYS * DAY} else start_ago end)
                              - uni(skey, 's:ac', 30 * {DAY}, 330 * {DAY}) end
                     else (case when trial then start_ago - {demo.TRIAL_DAYS * DAY} else start_ago end)
                          - least(36, 1 + floor(ln(1 - u(skey, 's:months')) / ln(0.88))) * {months}
                          + uni(skey, 's:mc', {HOUR}, 10 * {DAY})
                end::bigint as cancel_ago
            from {source} as src
        ) as s
    )"""


def app_events_sql(schema: str) -> str:
    return f"""
    insert into {schema}.app_events by name
    with devices as (
        select s.*, u(n, 'a:platform') < 0.55 as ios, random_ip(n, 'a:ip') as ip,
               'SUB-' || (100000000 + skey)::varchar as subscription_id
        from sub_rows as s
    ),
    slots as (
        select d.*, slot.name, slot.k,
            case slot.name
                when 'app_install' then start_ago + uni(skey, 'a:inst', {MINUTE}, 40 * {MINUTE})
                when 'app_open' then case when slot.k = 0 then start_ago + uni(skey, 'a:open', {MINUTE}, 10 * {MINUTE})
                                          else start_ago - uni(skey * 4 + slot.k, 'a:later', {HOUR}, 20 * {DAY}) end
                when 'trial_started' then start_ago
                when 'subscription_started' then subscribed_ago
            end::bigint as ago
        from devices as d, unnest([
            {{'name': 'app_install', 'k': 0}}, {{'name': 'app_open', 'k': 0}},
            {{'name': 'trial_started', 'k': 0}}, {{'name': 'subscription_started', 'k': 0}},
            {{'name': 'app_open', 'k': 1}}, {{'name': 'app_open', 'k': 2}}]) as t(slot)
        where case slot.name
            when 'app_install' then skey % 2 = 0
            when 'app_open' then (slot.k = 0 and skey % 2 = 1)
                 or (slot.k > 0 and slot.k <= pick(skey, 'a:opens', [0, 1, 1, 2, 2]))
            when 'trial_started' then trial
            else subscribed_ago is not null end
    )
    select uuid4(skey * 8 + (case name when 'app_install' then 0 when 'trial_started' then 1
                 when 'subscription_started' then 2 else 3 end) + k, 'a:id') as app_event_id,
        customer_id,
        case when name in ('trial_started', 'subscription_started') then subscription_id end as subscription_id,
        name as event_name, ts(ago) as occurred_at,
        case when ios then 'ios' else 'android' end as platform, ip,
        case when ios then pick(n, 'a:ua', (select ios_ua from ref_web))
             else pick(n, 'a:ua', (select android_ua from ref_web)) end as user_agent
    from slots
    where ago > 0
    """


# --------------------------------------------------------------------------------------------
# SaaS signups
# --------------------------------------------------------------------------------------------


def signups_sql(schema: str, batch: Batch) -> str:
    skewed = few(3, batch.scale) if batch.append_round == 0 else 0
    return f"""
    create or replace temp table signup_rows as
    with firsts as (
        select n, customer_id, z, n * 2 as sukey,
               greatest({MINUTE}, created_ago - uni(n, 'su:at', 0, 10 * {MINUTE}))::bigint as ago
        from latent where is_saas
    ),
    seconds as (
        select n, customer_id, z, n * 2 + 1 as sukey,
               (created_ago - uni(n, 'su:second', 5 * {DAY}, 200 * {DAY}))::bigint as ago
        from latent where is_saas and u(n, 'su:again') < 0.12
    ),
    skewed as (  -- recorded after as-of
        select l.n, l.customer_id, 0.0 as z, -1 - k as sukey,
               -uni(k, 'su:skew', {HOUR}, 2 * {DAY})::bigint as ago
        from range({skewed}) as t(k)
        join latent as l on l.n = {batch.first_customer} + h(k, 'su:skewc') % {batch.customers}
    ),
    all_signups as (
        select * from firsts union all select * from seconds where ago > {HOUR}
        union all select * from skewed
    ),
    planned as (
        select *, u(sukey, 'su:plan') - 0.12 * z as roll
        from all_signups
    )
    select *,
        case when sukey < 0 or roll < 0.55 then 'free' when roll < 0.87 then 'team' else 'business' end as plan,
        case when sukey < 0 then 1 when roll < 0.55 then pick(sukey, 'su:seats', [1, 1, 1, 2, 3])
             when roll < 0.87 then 2 + h(sukey, 'su:seats') % 24
             else least(400, floor(10 * exp(uni(sukey, 'su:seats', 0, 3))))::bigint end as seats,
        case when sukey >= 0 then 'SU-' || (100000000 + sukey)::varchar
             else 'SU-S' || (100000 - sukey)::varchar end as signup_id
    from planned
    ;
    insert into {schema}.signups by name
    with activated as (
        select *,
            case when u(sukey, 'su:act') < case plan when 'free' then 0.3 when 'team' then 0.5 else 0.65 end
                 then (ago - uni(sukey, 'su:actat', 0.5 * {DAY}, 21 * {DAY}))::bigint end as act0
        from signup_rows
    ),
    settled as (
        select *, case when act0 >= 0 then act0 end as activated_ago from activated
    )
    select signup_id, customer_id, ts(ago) as signed_up_at, plan, ts(activated_ago) as activated_at,
        seats::integer as seats,
        ts(case when u(sukey, 'su:upd') < 0.3
                then greatest(coalesce(activated_ago, ago) - uni(sukey, 'su:updat', {HOUR}, 30 * {DAY}),
                              least(coalesce(activated_ago, ago), 0))
                else coalesce(activated_ago, ago) end) as updated_at
    from settled
    """


# --------------------------------------------------------------------------------------------
# Web sessions
# --------------------------------------------------------------------------------------------


def web_sessions_sql(schema: str, batch: Batch) -> str:
    anonymous = round(demo.BASE_COUNTS["anonymous_sessions"] * batch.scale) if batch.append_round == 0 else 0
    window = demo.CLICK_WINDOW_DAYS * DAY
    return f"""
    insert into {schema}.web_sessions by name
    with conversions as (
        select 'O' || okey::varchar as ckey, 'order' as kind, order_id as conversion_id,
               customer_id, try_cast(customer_id[2:] as bigint) as n, ago, null as signup_id, order_id,
               okey in (select okey from dup_pixel_batch) as shares_pixel
        from order_moments
        where ago > 0
        union all
        select 'S' || sukey::varchar, 'signup', signup_id, customer_id, n, ago, signup_id, null, false
        from signup_rows where ago > 0
    ),
    rolled as (
        select *, u(ckey, 'w:bucket') as bucket_roll, u(ckey, 'w:checkout') < 0.86 as has_checkout,
               u(ckey, 'w:same') < 0.35 as same_roll,
               coalesce(n::varchar, ckey) as device_owner,
               case when n is not null and u(n, 'w:second') < 0.25 and u(ckey, 'w:which') >= 0.8
                    then ':b' else ':a' end as device_tag
        from conversions
    ),
    flagged as (
        select *, bucket_roll < 0.45 as recent, bucket_roll >= 0.45 and bucket_roll < 0.65 as old,
               bucket_roll < 0.45 and has_checkout and same_roll as same_session_click
        from rolled
    ),
    slots as (
        select f.*, slot,
            case slot
                when 1 then ago + {15 * MINUTE} + {window - 2 * HOUR} * pow(u(ckey, 'w:gap1'), 2)
                when 2 then ago + uni(ckey, 'w:gap2', {window + DAY // 2}, 40 * {DAY})
                when 3 then ago + uni(ckey, 'w:gap3', {HOUR}, 10 * {DAY})
                when 4 then ago + uni(ckey, 'w:gap4', {HOUR}, 10 * {DAY})
                else ago + uni(ckey, 'w:gap5', 2 * {MINUTE}, 25 * {MINUTE})
            end::bigint as started_ago,
            slot in (1, 2) or (slot = 5 and same_session_click) as is_click
        from flagged as f, unnest([1, 2, 3, 4, 5]) as t(slot)
        where case slot
            when 1 then recent and not same_session_click
            when 2 then old or (recent and u(ckey, 'w:extra_old') < 0.25)
            when 3 then pick(ckey, 'w:browse', [0, 0, 0, 1, 1, 2]) >= 1
            when 4 then pick(ckey, 'w:browse', [0, 0, 0, 1, 1, 2]) >= 2
            else has_checkout end
    ),
    anonymous as (
        select 'A' || a::varchar as ckey, case when u(a, 'w:anon_kind') < 0.75 then 'order' else 'signup' end as kind,
               null as customer_id, acquisition_ago(a, 'w:anon')::bigint as started_ago, 0 as slot,
               u(a, 'w:anon_click') < 0.8 as is_click, 'A' || a::varchar as device_owner, ':a' as device_tag,
               null as order_id, null as signup_id, null as pixel_event_id
        from range({anonymous}) as t(a)
    ),
    all_sessions as (
        select ckey, kind, customer_id, started_ago, slot, is_click, device_owner, device_tag,
               case when slot = 5 then order_id end as order_id,
               case when slot = 5 then signup_id end as signup_id,
               case when slot = 5 and u(ckey, 'w:pixel') < 0.87 then
                   case when shares_pixel then 'PX-SHARED-'
                            || (h(n, 'w:pair') % greatest(1, (select count(*) // 2 from dup_pixel_batch)))::varchar
                        when u(ckey, 'w:pixel_id') < 0.8 then conversion_id
                        else uuid4(ckey, 'w:pixel_uuid') end end as pixel_event_id
        from slots
        union all by name select * from anonymous
    ),
    devices as (
        select *, device_owner || device_tag as dkey,
               u(device_owner || device_tag, 'w:mobile') < 0.65 as mobile,
               ckey || '-' || slot::varchar as skey
        from all_sessions
        where started_ago > 0
    ),
    clicked as (
        select *, case when is_click then 'E.C.P.' || b64(skey, 'w:ttclid', 54 + h(skey, 'w:ttclen') % 19)
                  end as ttclid
        from devices
    )
    select 'WS-' || skey as session_id, customer_id, ts(started_ago) as started_at, ttclid,
        case when u(dkey, 'w:has_ttp') < 0.9 then translate(b64(dkey, 'w:ttp', 27), '-_', 'xQ') end as ttp,
        random_ip(dkey, 'w:ip') as ip,
        case when is_click and mobile and u(skey, 'w:inapp') < 0.6
                 then pick(skey, 'w:inapp_ua', (select in_app_ua from ref_web))
             when mobile then pick(dkey, 'w:ua', (select mobile_ua from ref_web))
             else pick(dkey, 'w:ua', (select desktop_ua from ref_web)) end as user_agent,
        case when kind = 'signup'
             then 'https://app.example.com' || pick(skey, 'w:path', (select saas_paths from ref_web))
             else 'https://shop.example.com' || pick(skey, 'w:path', (select shop_paths from ref_web)) end
        || case when is_click then '?utm_source=tiktok&utm_medium=paid_social&utm_campaign='
                    || pick(skey, 'w:campaign', (select campaigns from ref_web))
                    || '&utm_content=ad_' || (1000000000 + h(skey, 'w:ad') % 9000000000)::varchar
                    || '&ttclid=' || ttclid
                else pick(skey, 'w:organic', (select organic from ref_web)) end as page_url,
        order_id, signup_id, pixel_event_id
    from clicked
    """


# --------------------------------------------------------------------------------------------
# pLTV predictions
# --------------------------------------------------------------------------------------------


def predictions_sql(schema: str, batch: Batch) -> str:
    deployed = demo.NEW_MODEL_DEPLOYED_DAYS_AGO * DAY
    refresh = demo.REFRESH_RUN_HOURS_AGO * HOUR
    window_end = refresh + demo.RECENT_DAYS * DAY
    monthly_months = demo.monthly_months_expected()
    old, new = sql_str(demo.OLD_MODEL), sql_str(demo.NEW_MODEL)
    flaws = "" if batch.append_round else flawed_predictions_sql(schema, batch)
    return f"""
    create or replace temp table active_customers as
    select distinct customer_id from order_moments where ago between {refresh} and {window_end}
    union select customer_id from sub_rows where start_ago between {refresh} and {window_end}
    union select customer_id from signup_rows where ago between {refresh} and {window_end}
    ;
    insert into {schema}.pltv_predictions by name
    with valued as (
        select l.*,
            case when is_ecom then 0.68 * aov_usd * (1 + repeat_rate * lifetime_days
                 * (1 - exp(-{demo.HORIZON_DAYS} / lifetime_days)) / 365) else 0 end
            + case when is_sub then (case when u(n, 's:trial') < 0.88 then 1 / (1 + exp(-(0.25 + 0.9 * z))) else 1 end)
                   * case when u(n, 's:plan') < 0.35 then {float(demo.APP_PRICES["USD"][1])}::double
                          else {float(demo.APP_PRICES["USD"][0]) * monthly_months}::double end else 0 end
            + case when is_saas then 60 else 0 end as expected_usd,
            (created_ago - uni(n, 'p:first', {HOUR}, 8 * {HOUR}))::bigint as first_ago,
            l.customer_id in (select customer_id from active_customers) as active
        from latent as l
        where u(n, 'p:never') >= 0.05
    ),
    scores as (
        select n, customer_id, currency, fx, expected_usd, first_ago as scored_ago,
               case when first_ago > {deployed} then {old} else {new} end as model_version
        from valued where first_ago >= 0
        union all
        select n, customer_id, currency, fx, expected_usd,
               ({deployed} - uni(n, 'p:backfill', 0, 3 * {HOUR}))::bigint, {new}
        from valued
        where first_ago > {deployed} and created_ago <= {deployed + demo.BACKFILL_WINDOW_DAYS * DAY}
        union all
        select n, customer_id, currency, fx, expected_usd,
               ({refresh} - uni(n, 'p:refresh', 0, {HOUR}))::bigint, {new}
        from valued where active and first_ago > {refresh}
    ),
    noisy as (
        select *, hash(n, model_version, scored_ago) as skey,
               case when model_version = {old} then {demo.MODEL_NOISE[demo.OLD_MODEL]}
                    else {demo.MODEL_NOISE[demo.NEW_MODEL]} end as noise,
               case when model_version = {old} then {demo.MODEL_BIAS[demo.OLD_MODEL]} else 1.0 end as bias
        from scores
    ),
    localized as (
        select *, case when u(skey, 'p:usd') < 0.92 then currency else 'USD' end as score_currency,
               greatest(expected_usd * bias * exp(noise * gauss(skey, 'p:noise') - noise * noise / 2), 1.0) as usd
        from noisy
    )
    select customer_id,
        round(usd * c.fx * minor(score_currency)) / minor(score_currency) as predicted_ltv,
        score_currency as currency, model_version, ts(scored_ago) as scored_at,
        {demo.HORIZON_DAYS} as horizon_days
    from localized join ref_currency as c on c.currency = localized.score_currency
    {flaws}
    """


def flawed_predictions_sql(schema: str, batch: Batch) -> str:
    """Negative, NaN and 1e9 scores (recent ones), future scores, scores of unknown customers."""
    negatives, huge = few(4, batch.scale), few(2, batch.scale)
    orphans, future = few(5, batch.scale), few(4, batch.scale)
    return f"""
    ;
    create or replace temp table flaw_picks as
    select rowid as rid, row_number() over (order by hash(customer_id, scored_at, 'p:flaw')) as rank
    from {schema}.pltv_predictions
    where scored_at > timestamp '{{as_of}}' - interval 120 day
    ;
    update {schema}.pltv_predictions set predicted_ltv = case
        when f.rank <= {negatives} then -abs(predicted_ltv)
        when f.rank <= {2 * negatives} then 'NaN'::double
        else {demo.OUTLIER_LTV}.0 end
    from flaw_picks as f
    where {schema}.pltv_predictions.rowid = f.rid and f.rank <= {2 * negatives + huge}
    ;
    insert into {schema}.pltv_predictions by name
    select customer_id, round(120 * fx * (1 + u(n, 'p:fut')), 0) as predicted_ltv, currency,
           {sql_str(demo.NEW_MODEL)} as model_version,
           ts(-uni(n, 'p:futat', {HOUR}, 5 * {DAY})) as scored_at, {demo.HORIZON_DAYS} as horizon_days
    from latent where n in (select {batch.first_customer} + h(k, 'p:futc') % {batch.customers}
                            from range({future}) as t(k))
    union all
    select printf('C%08d', {batch.last_customer} + 900001 + k), 120.0, 'USD', {sql_str(demo.NEW_MODEL)},
           ts(uni(k, 'p:orphan', {DAY}, 60 * {DAY}) - 4 * {HOUR}), {demo.HORIZON_DAYS}
    from range({orphans}) as t(k)
    """


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def create_tables(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"create schema if not exists {META_SCHEMA}")
    for table, ddl in TABLE_DDL.items():
        con.execute(f"create or replace table {schema}.{table} ({ddl})")
    con.execute(f"""create or replace table {META_SCHEMA}.generator (
        schema_name varchar, seed integer, as_of timestamp, customers bigint, events_requested bigint,
        append_round integer, generated_at timestamp, seconds double)""")


def run_statements(con: duckdb.DuckDBPyConnection, script: str, as_of: datetime) -> None:
    script = inline_lists(script.replace("{as_of}", f"{as_of:%Y-%m-%d %H:%M:%S}"))
    for statement in script.split(";\n"):
        if statement.strip():
            try:
                con.execute(statement)
            except duckdb.Error as exc:
                raise SystemExit(f"{exc}\nin:\n{statement}") from None


def generate_batch(con: duckdb.DuckDBPyConnection, schema: str, batch: Batch, as_of: datetime,
                   log: bool = True) -> dict[str, float]:
    """Create the latent customers of `batch`, then fill every table; returns seconds per step."""
    steps = [
        ("customers", latent_sql(batch) + ";\n" + customers_sql(schema)),
        ("orders", order_moments_sql(batch) + ";\n" + orders_sql(schema, batch)),
        ("subscriptions", subscriptions_sql(schema, batch)),
        ("app_events", app_events_sql(schema)),
        ("signups", signups_sql(schema, batch)),
        ("web_sessions", dup_pixel_sql(batch) + ";\n" + web_sessions_sql(schema, batch)),
        ("pltv_predictions", predictions_sql(schema, batch)),
    ]
    timings: dict[str, float] = {}
    for name, script in steps:
        started = time.perf_counter()
        run_statements(con, script, as_of)
        timings[name] = time.perf_counter() - started
        if log:
            print(f"  {name:<17} {timings[name]:6.2f}s", file=sys.stderr, flush=True)
    return timings


def dup_pixel_sql(batch: Batch) -> str:
    if batch.append_round == 0:
        return "create or replace temp table dup_pixel_batch as select okey from dup_pixel"
    return "create or replace temp table dup_pixel_batch as select 0::bigint as okey where false"


def generate(out_db: Path, events: int, schema: str, as_of: datetime, seed: int) -> dict[str, int]:
    customers = max(50, math.ceil(events * CUSTOMERS_PER_EVENT))
    batch = Batch(0, customers, seed, customers / demo.BASE_COUNTS["customers"], 0)
    out_db.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(out_db)) as con:
        prepare(con, seed, as_of)
        create_tables(con, schema)
        generate_batch(con, schema, batch, as_of)
        record(con, schema, batch, as_of, events, time.perf_counter() - started)
        return row_counts(con, schema)


def append(out_db: Path, share: float, as_of: datetime | None) -> dict[str, int]:
    """Add about `share` x the outbox of new conversions within the hour before as-of."""
    started = time.perf_counter()
    with duckdb.connect(str(out_db)) as con:
        meta = con.execute(f"""select schema_name, seed, customers, events_requested, append_round
            from {META_SCHEMA}.generator order by append_round desc limit 1""").fetchone()
        if meta is None:
            raise SystemExit(f"{out_db}: no {META_SCHEMA}.generator row; generate the data set first")
        schema, seed, customers, events, last_round = meta
        as_of = as_of or now()
        # 20 % of the new conversions come from new customers (about 1.2 conversions each)
        new_customers = max(1, math.ceil(events * share * 0.2 / 1.2))
        batch = Batch(customers, customers + new_customers, seed, customers / demo.BASE_COUNTS["customers"],
                      last_round + 1, share)
        prepare(con, seed, as_of)
        con.execute(existing_latent_sql(customers, seed))
        generate_batch(con, schema, batch, as_of)
        record(con, schema, batch, as_of, events, time.perf_counter() - started)
        return row_counts(con, schema)


def existing_latent_sql(customers: int, seed: int) -> str:
    """The latent traits of the customers generated before (recomputed: they are pure functions
    of the customer number and the seed)."""
    batch = Batch(0, customers, seed, 1.0, 0)
    return latent_sql(batch).replace("create or replace temp table latent",
                                      "create or replace temp table existing_latent")


def prepare(con: duckdb.DuckDBPyConnection, seed: int, as_of: datetime) -> None:
    con.execute("set preserve_insertion_order = false")
    for statement in reference_sql() + macros(seed, as_of):
        con.execute(inline_lists(statement))


def record(con: duckdb.DuckDBPyConnection, schema: str, batch: Batch, as_of: datetime, events: int,
           seconds: float) -> None:
    con.execute(f"insert into {META_SCHEMA}.generator values (?, ?, ?, ?, ?, ?, ?, ?)",
                [schema, batch.seed, as_of, batch.last_customer, events, batch.append_round,
                 datetime.now(UTC).replace(tzinfo=None), seconds])
    con.execute("checkpoint")


def row_counts(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in TABLE_DDL:
        row = con.execute(f"select count(*) from {schema}.{table}").fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None)


def parse_as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out-db", type=Path, required=True, help="DuckDB file to create or extend")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="about this many conversions reach the outbox (default 1,000,000)")
    parser.add_argument("--schema", default="raw_first_party", help="schema of the source tables")
    parser.add_argument("--as-of", help="ISO timestamp (UTC) treated as now; default: now")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--append-share", type=float,
                        help="append new recent conversions, this share of the outbox, to existing tables")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.append_share is not None and not 0 < args.append_share <= 1:
        parser.error("--append-share must be in (0, 1]")
    if not args.schema.isidentifier():
        parser.error("--schema must be a plain identifier")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    as_of = parse_as_of(args.as_of)
    if args.append_share is not None:
        counts = append(args.out_db, args.append_share, as_of)
        what = f"appended {args.append_share:g} of the outbox"
    else:
        counts = generate(args.out_db, args.events, args.schema, as_of or now(), args.seed)
        what = f"{args.events:,} events requested"
    summary = ", ".join(f"{table} {count:,}" for table, count in counts.items())
    print(f"bench data ({what}) -> {args.out_db}: {summary} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
