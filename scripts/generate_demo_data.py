#!/usr/bin/env python3
"""Generate the demo first-party warehouse that tiktok-outbox turns into TikTok conversions.

Usage::

    python scripts/generate_demo_data.py --out seeds/demo [--as-of 2026-11-25T06:00:00]
                                         [--seed 42] [--scale 1.0]

One CSV per source table of ``models/staging/first_party/_first_party__sources.yml`` (same
column names, same order): customers, orders, web_sessions, subscriptions, app_events, signups,
pltv_predictions, consents, erasure_requests, order_items, event_sources, saas_invoices,
experiments and ad_spend. Only the standard library is used, so this runs before anything else is
installed.

The data
--------
One advertiser with three business lines sharing a customer base:

* ecommerce (a DTC store): customers buy, come back and buy again; orders carry gross revenue,
  discount, net revenue (gross - discount - tax - shipping, tax and shipping not stored) and
  refunds, in the currency of the customer's country;
* subscription_app: installs, 7-day trials, monthly / annual subscriptions and cancellations,
  mirrored by SDK events in app_events (same timestamps as the subscription rows);
* saas (product-led): workspace signups on free / team / business plans, some activated.

Web sessions surround every web conversion: ad clicks with a TikTok click id (ttclid) in the
landing URL, organic visits, and the checkout / signup session a few minutes before the
conversion, which carries the order or signup id and the pixel's event_id (the dedup key).
Anonymous visits (no customer) make up the rest.

Every customer has a latent value; the pLTV model scores customers a few hours after they are
created (and the newer model re-scores the recent ones), with predictions correlated to what
the customer really spends afterwards. The older model ``pltv-2026.06`` over-predicts by about
20 %, the newer ``pltv-2026.10`` is roughly unbiased, so calibration against realised value
means something.

Time
----
History spans 18 months before ``--as-of`` (default: now, UTC, truncated to the hour), with
acquisition growing towards the present so that at least a fifth of orders, trials, paid
subscriptions and signups fall in the last 28 days. Every moment is drawn as an offset before
as-of and only rendered at the end, so two as-of values give the same ids and values with every
timestamp shifted by the same amount. Timestamps are ``YYYY-MM-DD HH:MM:SS`` in UTC.

Deliberate flaws (a few percent each, deterministic)
----------------------------------------------------
* emails: mixed case, stray spaces, invalid ('jane.doe@', 'n/a', 'jane@@example.com',
  'no-email', no '@'), blank (whitespace) and null, some already SHA-256 hashed (lowercase
  hex of the trimmed, lowercased email), some with non-ASCII characters;
* phones: valid numbers of 16 countries in national format (with the trunk prefix where the
  country uses one) and international formats ('+44 20 7946 0018', '0044 20 7946 0018',
  '+1-415-555-0132', E.164); Italian numbers keep their leading 0 after +39; invalid ones
  ('12345', 'call me', '+999 1234', '000', ...), blank and null. A national number is only
  written for a customer whose country_code names its country;
* country_code: mostly upper-case ISO-2, some lower case or padded (' gb'), some null;
* orders: about 2 % guest orders (null customer_id), lower-case currencies ('usd'), unknown
  ('XYZ') or null currency, a handful of zero or negative net revenue, two pairs of orders
  whose checkout sessions share one pixel event id, a few orders dated hours to days after
  as-of (clock skew; they have no web session);
* signups: a few dated after as-of;
* consents: a consent-management platform's log, one row per decision (purpose ``advertising``:
  may conversions be shared with ad networks; ``sale_or_share``: a US state "do not sell or share"
  opt-out). Where opt-in is the law (the EEA and the UK) about 72 % grant advertising at sign-up,
  20 % refuse and 8 % never answer; a few change their mind later. Elsewhere about 3 % opt out of
  advertising, and about 9 % of US customers opt out of sale or sharing. A few statuses are
  written in capitals;
* order_items: one to four lines per order with a positive gross revenue, whose quantity x unit
  price add up to about the gross revenue (in the order's currency); a few lines have a zero
  quantity (left out of the contents);
* event_sources: where events go besides the default ids of the environment: the Android app
  has an app id of its own, and the Canadian store a pixel of its own;
* saas_invoices: the monthly invoices of paying workspaces (seats x the plan's seat price, in the
  customer's currency) until they churn (5.2 % a month); about 19 % of free workspaces upgrade to one
  team seat after one to three months; 2 % of invoices are refunded and 1 % void;
* experiments: the register of two geo experiments of pLTV against business as usual on the
  store's TikTok campaigns, by country: one read at maturity, one still running. Each salt is the
  first that splits the 16 countries 8 / 8 with 40-60 % of the customers in treatment. The
  finished one has a planted effect: the customers whose first order falls in its window in a
  treatment country spend twice as much (``--geo-lift`` scales it; 0 plants none). Only order
  amounts change, so every random stream, and every other table, stays as it is;
* erasure_requests: about 0.5 % of customers ask to be forgotten (GDPR art. 17 / CCPA), some in
  the last 28 days;
* pltv_predictions: a few negative values, 'NaN', one or two 1e9 outliers, scores dated after
  as-of (not to be used) and scores for customer ids that are not in customers.

Ad spend
--------
ad_spend holds the daily spend of five campaigns on three networks (tiktok, meta, google) over
the 365 days before as-of's day, one row per day, campaign and targeted country, in the
country's currency. Budgets follow the countries' weights and the growth of acquisition; amounts
scale with ``--scale``, rows do not (the campaigns and their countries are the same at every
scale). Every network reports conversions and a conversion value that claim more than its share
of the real revenue (platform attribution over-claims). Planted for the cross-network readout
(model marketing_network_weekly): over the last 8 weeks TikTok's budget ramps up to 2.5 times
its level and its reported ROAS to 1.8 times, while first-party revenue, which the spend does
not drive, does not follow: platform ROAS up, blended MER down.

Ids and values
--------------
customer_id 'C000123' (numbered in creation order), order_id 'ORD-100001', session_id
'WS-1000001', subscription_id 'SUB-100001', signup_id 'SU-100001', app_event_id a UUID. Order
status: completed | partially_refunded | refunded | cancelled (refunded_amount is 0 unless
refunded); subscription plan: monthly | annual; signup plan: free | team | business; app
event_name: app_install | app_open | trial_started | subscription_started; platform: ios |
android. A checkout session's pixel_event_id is the order / signup id, or a UUID for some.
Amounts have 2 decimals except JPY (whole yen).

In CSV an empty field is a null; blank strings are written as whitespace so they stay strings.

``generate()`` returns the rendered tables plus what each customer's email and phone are meant
to be (valid or not, and the region to parse a phone with), for the tests.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import math
import os
import random
import sys
import time
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Contract: column names and order of _first_party__sources.yml
# --------------------------------------------------------------------------------------------

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id", "email", "phone", "country_code", "created_at", "updated_at",
        "first_name", "last_name", "city", "state", "zip_code", "locale",
    ),
    "orders": (
        "order_id", "customer_id", "ordered_at", "status", "currency", "gross_revenue",
        "discount_amount", "net_revenue", "refunded_amount", "updated_at",
    ),
    "web_sessions": (
        "session_id", "customer_id", "started_at", "ttclid", "ttp", "ip", "user_agent",
        "page_url", "order_id", "signup_id", "pixel_event_id",
    ),
    "subscriptions": (
        "subscription_id", "customer_id", "plan", "trial_started_at", "subscribed_at",
        "cancelled_at", "currency", "price", "updated_at",
    ),
    "app_events": (
        "app_event_id", "customer_id", "subscription_id", "event_name", "occurred_at",
        "platform", "ip", "user_agent", "idfa", "idfv", "gaid", "att_status",
    ),
    "signups": (
        "signup_id", "customer_id", "signed_up_at", "plan", "activated_at", "seats", "updated_at",
    ),
    "pltv_predictions": (
        "customer_id", "predicted_ltv", "currency", "model_version", "scored_at", "horizon_days",
    ),
    "consents": ("customer_id", "purpose", "status", "recorded_at"),
    "order_items": (
        "order_id", "line_number", "product_id", "product_name", "category", "quantity",
        "unit_price",
    ),
    "erasure_requests": ("customer_id", "requested_at"),
    "event_sources": ("event_source", "platform", "country_code", "event_source_id"),
    "saas_invoices": (
        "invoice_id", "signup_id", "customer_id", "paid_at", "amount", "currency", "status",
    ),
    "experiments": (
        "experiment_id", "network", "business_model", "geo_level", "treatment_share", "salt",
        "pre_period_started_at", "started_at", "ended_at", "maturity_days", "planned_spend",
        "currency",
    ),
    "ad_spend": (
        "spend_date", "network", "campaign_id", "campaign_name", "country_code", "spend",
        "currency", "platform_conversions", "platform_conversion_value",
    ),
}

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

MINUTE = 60
HOUR = 3600
DAY = 86400
HISTORY_DAYS = 548  # about 18 months
RECENT_DAYS = 28  # the outbox sends conversions at most this old
CLICK_WINDOW_DAYS = 7  # default tiktok_click_window_days

BASE_COUNTS = {"customers": 3000, "guest_orders": 100, "anonymous_sessions": 2300}

ECOMMERCE, SUBSCRIPTION_APP, SAAS = "ecommerce", "subscription_app", "saas"
BUSINESS_LINES = (ECOMMERCE, SUBSCRIPTION_APP, SAAS)
PRIMARY_LINE_WEIGHTS = (0.59, 0.22, 0.19)
CROSS_LINE_SHARE = 0.08

ORDER_STATUSES = ("completed", "partially_refunded", "refunded", "cancelled")
OLD_MODEL, NEW_MODEL = "pltv-2026.06", "pltv-2026.10"
NEW_MODEL_DEPLOYED_DAYS_AGO = 60
BACKFILL_WINDOW_DAYS = 180  # the new model re-scored customers created this long before it
REFRESH_RUN_HOURS_AGO = 30  # latest weekly re-score of customers active in the last 28 days
MODEL_BIAS = {OLD_MODEL: 1.2, NEW_MODEL: 1.0}
MODEL_NOISE = {OLD_MODEL: 0.55, NEW_MODEL: 0.40}
HORIZON_DAYS = 365
OUTLIER_LTV = 1_000_000_000

COUNTRY_WEIGHTS: dict[str, float] = {
    "US": 30, "GB": 10, "CA": 6, "DE": 8, "FR": 6, "AU": 5, "BR": 5, "IN": 5,
    "JP": 4, "MX": 4, "ES": 4, "IT": 4, "NL": 3, "SE": 3, "SG": 2, "AE": 2,
}
COUNTRY_CURRENCY = {
    "US": "USD", "CA": "CAD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "ES": "EUR", "IT": "EUR",
    "NL": "EUR", "AU": "AUD", "BR": "BRL", "IN": "INR", "JP": "JPY", "MX": "MXN", "SE": "SEK",
    "SG": "SGD", "AE": "AED",
}
# Units of local currency per USD (rounded; enough for plausible local amounts).
FX_PER_USD = {
    "USD": 1.0, "CAD": 1.37, "GBP": 0.79, "EUR": 0.92, "AUD": 1.52, "BRL": 5.4, "INR": 83.0,
    "JPY": 150.0, "MXN": 17.5, "SEK": 10.5, "SGD": 1.34, "AED": 3.67,
}
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY"})
# VAT / GST / sales tax share of the order total.
TAX_RATE = {
    "US": 0.07, "CA": 0.13, "GB": 0.20, "DE": 0.19, "FR": 0.20, "ES": 0.21, "IT": 0.22,
    "NL": 0.21, "SE": 0.25, "AU": 0.10, "BR": 0.17, "IN": 0.18, "JP": 0.10, "MX": 0.16,
    "SG": 0.09, "AE": 0.05,
}
ACTIVE_LIFETIME_DAYS = 180.0  # mean time before an ecommerce customer stops buying
RECENT_PUSH = 2.3  # repeat purchases run faster in the last 28 days (seasonal campaign)
FREE_SHIPPING_USD = 60.0
SHIPPING_USD = 5.99
# App-store price tiers per currency: (monthly, annual).
APP_PRICES: dict[str, tuple[str, str]] = {
    "USD": ("9.99", "59.99"), "CAD": ("13.99", "79.99"), "GBP": ("7.99", "49.99"),
    "EUR": ("9.99", "59.99"), "AUD": ("14.99", "89.99"), "BRL": ("49.90", "299.90"),
    "INR": ("799", "4999"), "JPY": ("1500", "9800"), "MXN": ("179.00", "1099.00"),
    "SEK": ("109.00", "699.00"), "SGD": ("13.98", "84.98"), "AED": ("36.99", "219.99"),
}
TRIAL_DAYS = 7
MONTH_SECONDS = int(30.44 * DAY)
SAAS_SEAT_PRICE_USD = {"free": 0.0, "team": 10.0, "business": 24.0}

# --------------------------------------------------------------------------------------------
# Names, emails and phones
# --------------------------------------------------------------------------------------------

NAME_POOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (
        ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
         "Elizabeth", "Sarah", "Emma", "Oliver", "Olivia", "Liam", "Noah", "Ava", "Jack", "Chloe",
         "Ethan", "Zoë", "Renée"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
         "Clark", "Walker", "Wright", "Evans", "Thomas", "Roberts", "Hughes", "O'Brien", "Doe"),
    ),
    "de": (
        ("Lukas", "Anna", "Jonas", "Lea", "Felix", "Hannah", "Maximilian", "Sophie", "Jürgen",
         "Günther", "Lena", "Björn"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Schäfer", "Köhler", "Hoffmann", "Groß"),
    ),
    "fr": (
        ("Léa", "Hugo", "Chloé", "Louis", "Camille", "Gabriel", "Inès", "Jules", "Zoé", "Théo",
         "Manon", "Noël"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Lefèvre",
         "Moreau", "Girard", "Ferré"),
    ),
    "es": (
        ("José", "María", "Lucía", "Javier", "Sofía", "Alejandro", "Martín", "Valentina", "Diego",
         "Camila", "Jesús", "Ramón"),
        ("García", "Rodríguez", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Núñez",
         "Fernández", "Jiménez", "Muñoz", "Ortega"),
    ),
    "pt": (
        ("João", "Ana", "Pedro", "Beatriz", "Lucas", "Júlia", "Gabriel", "Mariana", "Rafael",
         "Letícia", "Thiago", "Luíza"),
        ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Rodrigues", "Almeida",
         "Araújo", "Conceição", "Gonçalves"),
    ),
    "it": (
        ("Giulia", "Marco", "Francesca", "Luca", "Chiara", "Alessandro", "Sofia", "Matteo",
         "Martina", "Lorenzo", "Niccolò"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
         "Marino", "Greco", "Fabbrì"),
    ),
    "nl": (
        ("Daan", "Emma", "Sem", "Julia", "Lucas", "Tess", "Finn", "Sanne", "Bram", "Fleur"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer",
         "de Boer", "Mulder"),
    ),
    "sv": (
        ("Erik", "Anna", "Lars", "Maja", "Oskar", "Elsa", "Nils", "Ebba", "Åsa", "Björn"),
        ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
         "Persson", "Svensson", "Gustafsson", "Åberg"),
    ),
    "ja": (
        ("Haruto", "Yui", "Sota", "Hina", "Yuto", "Aoi", "Ren", "Sakura", "Takumi", "Yuna"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
         "Kobayashi", "Kato"),
    ),
    "hi": (
        ("Aarav", "Priya", "Vihaan", "Ananya", "Arjun", "Diya", "Rohan", "Isha", "Aditya",
         "Kavya"),
        ("Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Mehta", "Das"),
    ),
    "ar": (
        ("Mohammed", "Fatima", "Ahmed", "Mariam", "Omar", "Aisha", "Khalid", "Noura", "Yousef",
         "Layla"),
        ("Al Mansoori", "Al Hashimi", "Khan", "Haddad", "Al Suwaidi", "Nasser", "Rahman",
         "Saleh", "Farouk", "Hamdan"),
    ),
    "sg": (
        ("Wei Ling", "Jun Jie", "Hui Min", "Zhi Hao", "Siti", "Muhammad", "Priya", "Ethan",
         "Chloe", "Ryan"),
        ("Tan", "Lim", "Lee", "Ng", "Wong", "Goh", "Chua", "Koh", "Teo", "Ong"),
    ),
}
COUNTRY_LANGUAGE = {
    "US": "en", "CA": "en", "GB": "en", "AU": "en", "DE": "de", "FR": "fr", "ES": "es",
    "MX": "es", "BR": "pt", "IT": "it", "NL": "nl", "SE": "sv", "JP": "ja", "IN": "hi",
    "AE": "ar", "SG": "sg",
}
COUNTRY_EMAIL_DOMAIN = {
    "US": "example.net", "CA": "example.ca", "GB": "example.co.uk", "AU": "example.com.au",
    "DE": "example.de", "FR": "example.fr", "ES": "example.es", "MX": "example.com.mx",
    "BR": "example.com.br", "IT": "example.it", "NL": "example.nl", "SE": "example.se",
    "JP": "example.co.jp", "IN": "example.in", "AE": "example.ae", "SG": "example.com.sg",
}
GENERIC_EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.com")

EMAIL_KIND_WEIGHTS: dict[str, float] = {
    "clean": 72.0, "mixed_case": 8.0, "padded": 4.0, "unicode": 4.0, "hashed": 2.0,
    "invalid": 3.0, "blank": 1.0, "null": 6.0,
}
PHONE_KIND_WEIGHTS: dict[str, float] = {
    "national": 40.0, "international": 24.0, "foreign": 2.0, "invalid": 4.0, "blank": 2.0,
    "null": 28.0,
}
COUNTRY_CODE_KIND_WEIGHTS: dict[str, float] = {"upper": 92.0, "lower": 2.5, "padded": 2.5,
                                               "null": 3.0}
INVALID_PHONES = ("12345", "call me", "+999 1234", "000", "n/a", "0000000000", "123-456",
                  "+1 (555) 01")

# Number plans, one (national format, international format) pair per range. Placeholders:
# '#' any digit, 'N' 2-9, 'P' 1-8, 'Q' 1-5; both formats hold the same placeholders in order.
# Each range is chosen so that every filling is a valid number for libphonenumber.
DIGIT_CLASSES = {"#": "0123456789", "N": "23456789", "P": "12345678", "Q": "12345"}
PHONE_PLANS: dict[str, tuple[tuple[str, str], ...]] = {
    "US": tuple((f"({a}) N##-####", f"+1 {a}-N##-####")
                for a in ("415", "212", "646", "310", "617", "312", "206", "512")),
    "CA": tuple((f"({a}) N##-####", f"+1 {a}-N##-####")
                for a in ("416", "604", "514", "647", "613")),
    "GB": (("020 7946 ####", "+44 20 7946 ####"), ("0161 496 ####", "+44 161 496 ####"),
           ("0113 496 0###", "+44 113 496 0###"), ("07400 ######", "+44 7400 ######"),
           ("07480 ######", "+44 7480 ######"), ("07123 ######", "+44 7123 ######")),
    "DE": (("030 ########", "+49 30 ########"), ("040 ########", "+49 40 ########"),
           ("089 #######", "+49 89 #######"), ("0176 1#######", "+49 176 1#######"),
           ("0151 ########", "+49 151 ########")),
    "FR": (("01 ## ## ## ##", "+33 1 ## ## ## ##"), ("03 ## ## ## ##", "+33 3 ## ## ## ##"),
           ("06 5# ## ## ##", "+33 6 5# ## ## ##"), ("06 6# ## ## ##", "+33 6 6# ## ## ##"),
           ("06 7# ## ## ##", "+33 6 7# ## ## ##"), ("07 5# ## ## ##", "+33 7 5# ## ## ##"),
           ("07 8# ## ## ##", "+33 7 8# ## ## ##")),
    "AU": (("(02) 9### ####", "+61 2 9### ####"), ("(03) 8### ####", "+61 3 8### ####"),
           ("040# ### ###", "+61 40# ### ###"), ("041# ### ###", "+61 41# ### ###"),
           ("042# ### ###", "+61 42# ### ###"), ("043# ### ###", "+61 43# ### ###")),
    "BR": (("(11) 9####-####", "+55 11 9####-####"), ("(21) 9####-####", "+55 21 9####-####"),
           ("(11) 3###-####", "+55 11 3###-####")),
    "IN": (("098### #####", "+91 98### #####"), ("097### #####", "+91 97### #####"),
           ("08#### #####", "+91 8#### #####"), ("07#### #####", "+91 7#### #####"),
           ("09#### #####", "+91 9#### #####")),
    "JP": (("080-####-####", "+81 80-####-####"), ("090-P###-####", "+81 90-P###-####"),
           ("03-3###-####", "+81 3-3###-####"), ("03-5###-####", "+81 3-5###-####"),
           ("06-####-####", "+81 6-####-####")),
    "MX": (("55 #### ####", "+52 55 #### ####"), ("33 #### ####", "+52 33 #### ####"),
           ("81 #### ####", "+52 81 #### ####")),
    "ES": (("6## ## ## ##", "+34 6## ## ## ##"), ("91# ## ## ##", "+34 91# ## ## ##"),
           ("93# ## ## ##", "+34 93# ## ## ##")),
    "IT": (("06 68## ####", "+39 06 68## ####"), ("02 #### ####", "+39 02 #### ####"),
           ("347 ### ####", "+39 347 ### ####"), ("320 ### ####", "+39 320 ### ####"),
           ("339 ### ####", "+39 339 ### ####"), ("328 ### ####", "+39 328 ### ####")),
    "NL": (("06 Q#######", "+31 6 Q#######"), ("020 ### ####", "+31 20 ### ####"),
           ("010 ### ####", "+31 10 ### ####")),
    "SE": (("070-### ## ##", "+46 70 ### ## ##"), ("073-### ## ##", "+46 73 ### ## ##"),
           ("08-### ### ##", "+46 8 ### ### ##")),
    "SG": (("8P## ####", "+65 8P## ####"), ("9P## ####", "+65 9P## ####"),
           ("6Q## ####", "+65 6Q## ####")),
    "AE": (("050 ### ####", "+971 50 ### ####"), ("055 ### ####", "+971 55 ### ####"),
           ("052 ### ####", "+971 52 ### ####"), ("056 ### ####", "+971 56 ### ####")),
}
NANP = frozenset({"US", "CA"})
# Countries whose international call prefix is plain '00' (so '0044 ...' dials from there).
IDD_00_COUNTRIES = frozenset({"GB", "DE", "FR", "ES", "IT", "NL", "SE", "IN", "AE", "MX"})

# --------------------------------------------------------------------------------------------
# Web and app context
# --------------------------------------------------------------------------------------------

DESKTOP_USER_AGENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15"),
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"),
)
MOBILE_USER_AGENTS = (
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Mobile Safari/537.36"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"),
)
# The browser inside the TikTok app, where most ad clicks land.
IN_APP_USER_AGENTS = (
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148 musical_ly_36.5.0 JsSdk/2.0 NetType/WIFI "
     "Channel/App Store ByteLocale/en Region/US"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/129.0.6668.100 Mobile Safari/537.36 "
     "musical_ly_2023605030 JsSdk/1.0 NetType/4G Channel/googleplay AppName/musical_ly "
     "app_version/36.5.3 ByteLocale/en"),
)
APP_USER_AGENTS = {
    "ios": (
        "Habitly/5.3.1 (com.example.habitly; build:5310; iOS 18.1.0) Alamofire/5.9.1",
        "Habitly/5.2.0 (com.example.habitly; build:5200; iOS 17.6.1) Alamofire/5.9.1",
    ),
    "android": (
        "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240905.003) Habitly/5.3.1",
        "Dalvik/2.1.0 (Linux; U; Android 13; SM-A546B Build/TP1A.220624.014) Habitly/5.2.0",
    ),
}
IPV4_FIRST_OCTETS = (23, 24, 31, 37, 45, 62, 66, 68, 71, 73, 76, 81, 82, 86, 88, 92, 94, 98,
                     99, 108, 109, 151, 173, 174, 176, 177, 179, 185, 186, 189, 201)
IPV6_PREFIXES = ("2600:1700", "2a02:c7c", "2a01:cb00", "2405:201", "2804:14d")
SHOP_PATHS = ("/", "/collections/new-arrivals", "/products/linen-shirt",
              "/products/trail-runner-2", "/collections/sale", "/products/ceramic-mug-set",
              "/blog/summer-lookbook")
SAAS_PATHS = ("/", "/pricing", "/signup", "/templates/roadmap", "/customers")
TIKTOK_CAMPAIGNS = ("always_on_prospecting", "retargeting_30d", "spark_ads_ugc",
                    "catalog_sales", "bf_cyber_week")
ORGANIC_QUERIES = ("", "", "?utm_source=google&utm_medium=cpc&utm_campaign=brand",
                   "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly",
                   "?utm_source=instagram&utm_medium=social")
ALPHANUMERIC_ONLY = str.maketrans({"-": "x", "_": "Q"})


# --------------------------------------------------------------------------------------------
# Small building blocks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class At:
    """A moment as whole seconds before as-of (negative: after as-of); rendered at the end."""

    ago: int


@dataclass(frozen=True)
class DaysAgo:
    """A calendar day as whole days before as-of's day; rendered at the end as YYYY-MM-DD."""

    days: int


Cell = str | At | DaysAgo | None
Row = dict[str, Cell]


@dataclass(frozen=True)
class PhoneIntent:
    """What a customer's phone is meant to be: valid numbers parse with ``region``."""

    customer_id: str
    raw: str
    valid: bool
    region: str | None
    style: str


@dataclass(frozen=True)
class EmailIntent:
    """What a customer's email is meant to be; ``normalized`` is the trimmed lower-case form."""

    customer_id: str
    raw: str | None
    kind: str
    normalized: str | None


@dataclass
class DemoData:
    """Rendered tables (each a list of string rows in contract order) and the data's intent."""

    as_of: datetime
    tables: dict[str, list[list[str]]]
    phones: list[PhoneIntent]
    emails: list[EmailIntent]


def rng_for(seed: int, section: str) -> random.Random:
    """An independent, reproducible random stream per section."""
    return random.Random(f"{seed}/{section}")


def few(base: int, scale: float) -> int:
    """How many deliberate flaws of one kind: ``base`` at scale 1, at least one."""
    return max(1, round(base * scale))


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def later(ago: int, seconds: float) -> int:
    """``seconds`` after ``ago``."""
    return ago - int(seconds)


def earlier(ago: int, seconds: float) -> int:
    """``seconds`` before ``ago``."""
    return ago + int(seconds)


def capped_later(ago: int, seconds: float) -> int:
    """``seconds`` after ``ago`` but not after as-of (unless ``ago`` already is)."""
    return max(later(ago, seconds), min(ago, 0))


def token(rng: random.Random, length: int, alphanumeric: bool = False) -> str:
    """An opaque base64url token of ``length`` characters (letters and digits only if asked)."""
    text = base64.urlsafe_b64encode(rng.randbytes(length)).decode("ascii")[:length]
    return text.translate(ALPHANUMERIC_ONLY) if alphanumeric else text


def make_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def acquisition_days_ago(rng: random.Random) -> float:
    """Days before as-of a customer arrives: growing acquisition and a recent push."""
    if rng.random() < 0.30:
        return rng.uniform(0.0, RECENT_DAYS)
    return RECENT_DAYS + (HISTORY_DAYS - RECENT_DAYS) * rng.random() ** 1.8


def minor_factor(currency: str) -> int:
    return 1 if currency in ZERO_DECIMAL_CURRENCIES else 100


def to_minor(amount_usd: float, currency: str) -> int:
    """A USD amount in whole minor units of ``currency``."""
    return round(amount_usd * FX_PER_USD[currency] * minor_factor(currency))


def format_minor(minor: int, currency: str) -> str:
    if currency in ZERO_DECIMAL_CURRENCIES:
        return str(minor)
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def format_local(amount_usd: float, currency: str) -> str:
    return format_minor(to_minor(amount_usd, currency), currency)


# --------------------------------------------------------------------------------------------
# Emails and phones
# --------------------------------------------------------------------------------------------


def ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ß", "ss")


def email_local_part(rng: random.Random, first: str, last: str) -> str:
    f = ascii_fold(first).lower().replace(" ", "").replace("'", "")
    la = ascii_fold(last).lower().replace(" ", "").replace("'", "")
    style = rng.randrange(6)
    if style == 0:
        return f"{f}{la}"
    if style == 1:
        return f"{f[0]}.{la}"
    if style == 2:
        return f"{f}_{la}"
    if style == 3:
        return f"{f}.{la}{rng.randrange(1, 99)}"
    return f"{f}.{la}"


def email_domain(rng: random.Random, country: str) -> str:
    if rng.random() < 0.5:
        return COUNTRY_EMAIL_DOMAIN[country]
    return rng.choice(GENERIC_EMAIL_DOMAINS)


def mixed_case(rng: random.Random, email: str) -> str:
    local, domain = email.split("@", 1)
    local = ".".join(part.capitalize() for part in local.split("."))
    domain = domain.upper() if rng.random() < 0.4 else domain.capitalize()
    return f"{local}@{domain}"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def messy_email(
    rng: random.Random, kind: str, email: str, first: str, last: str
) -> tuple[str | None, str | None]:
    """(raw email, normalised email it stands for) for a clean ``email`` and a ``kind``."""
    local, domain = email.split("@", 1)
    if kind == "clean":
        return email, email
    if kind == "mixed_case":
        return mixed_case(rng, email), email
    if kind == "padded":
        raw = " " * rng.randint(1, 2) + mixed_case(rng, email) + " " * rng.randint(0, 2)
        return raw, email
    if kind == "unicode":
        raw = f"{first.upper()}.{last.replace(' ', '')}@Correo.{domain.capitalize()}"
        return raw, raw.strip().lower()
    if kind == "hashed":
        return sha256_hex(email), email
    if kind == "invalid":
        options = (f"{local}@", "n/a", f"{local}@@{domain}", "no-email", f"{local}.{domain}")
        return rng.choice(options), None
    if kind == "blank":
        return " " * rng.randint(1, 3), None
    return None, None


def fill_phone_plan(rng: random.Random, plan: tuple[str, str]) -> tuple[str, str]:
    """Fill one number range; returns (national, international)."""
    national, international = plan
    digits = [rng.choice(DIGIT_CLASSES[ch]) for ch in national if ch in DIGIT_CLASSES]

    def fill(pattern: str) -> str:
        it = iter(digits)
        return "".join(next(it) if ch in DIGIT_CLASSES else ch for ch in pattern)

    return fill(national), fill(international)


def national_variant(rng: random.Random, country: str, national: str) -> str:
    """The national number as people type it: as formatted, or with other separators."""
    roll = rng.random()
    if country in NANP:
        digits = "".join(ch for ch in national if ch.isdigit())
        if roll < 0.55:
            return national
        if roll < 0.75:
            return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
        if roll < 0.9:
            return f"{digits[:3]}.{digits[3:6]}.{digits[6:]}"
        return digits
    if roll < 0.85:
        return national
    return "".join(ch for ch in national if ch.isdigit())


def international_variant(rng: random.Random, country: str, international: str,
                          dial_from: str) -> tuple[str, str]:
    """An international way to write the number, valid when dialled from ``dial_from``."""
    roll = rng.random()
    if country in NANP and roll < 0.25:
        return international.replace(" ", "-"), "intl_dashed"
    if roll < 0.45 and dial_from in IDD_00_COUNTRIES:
        return "00" + international[1:], "intl_00"
    if roll < 0.7:
        return "+" + "".join(ch for ch in international if ch.isdigit()), "e164"
    return international, "intl"


def make_phone(
    rng: random.Random, country: str, kind: str, national_allowed: bool
) -> tuple[str | None, bool, str]:
    """(raw phone, intended valid, style) for a customer of ``country``."""
    if kind in ("null", "blank", "invalid"):
        if kind == "null":
            return None, False, "null"
        if kind == "blank":
            return " " * rng.randint(1, 2), False, "blank"
        return rng.choice(INVALID_PHONES), False, "invalid"
    number_country = country
    if kind == "foreign":
        number_country = rng.choice([c for c in PHONE_PLANS if c != country])
    national, international = fill_phone_plan(rng, rng.choice(PHONE_PLANS[number_country]))
    if kind == "national" and national_allowed:
        return national_variant(rng, country, national), True, "national"
    dial_from = country if national_allowed else ""
    raw, style = international_variant(rng, number_country, international, dial_from)
    return raw, True, style


def messy_country_code(rng: random.Random, country: str) -> str | None:
    kind = pick(rng, COUNTRY_CODE_KIND_WEIGHTS)
    if kind == "lower":
        return country.lower()
    if kind == "padded":
        return rng.choice((f" {country.lower()}", f"{country} ", f" {country.capitalize()} "))
    if kind == "null":
        return None
    return country


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------


@dataclass
class Customer:
    """A customer and the latent traits every table draws on."""

    customer_id: str
    country: str
    currency: str
    lines: tuple[str, ...]
    created: int
    propensity: float  # standard normal; drives spend, conversion and plan
    row: Row = field(default_factory=dict)
    first_name: str = ""
    last_name: str = ""
    aov_usd: float = 0.0  # ecommerce: average order value before discount
    repeat_rate: float = 0.0  # ecommerce: repeat orders per year
    lifetime_days: float = ACTIVE_LIFETIME_DAYS  # ecommerce: mean time until the customer lapses
    expected_value_usd: float = 0.0  # expected value over the pLTV horizon (all lines)


def draw_lines(rng: random.Random) -> tuple[str, ...]:
    primary = rng.choices(BUSINESS_LINES, weights=PRIMARY_LINE_WEIGHTS)[0]
    return tuple(
        line for line in BUSINESS_LINES if line == primary or rng.random() < CROSS_LINE_SHARE
    )


def build_customers(
    seed: int, scale: float
) -> tuple[list[Customer], list[EmailIntent], list[PhoneIntent]]:
    rng = rng_for(seed, "customers")
    count = max(50, round(BASE_COUNTS["customers"] * scale))
    drafts = []
    for i in range(count):
        country = rng.choices(list(COUNTRY_WEIGHTS), weights=list(COUNTRY_WEIGHTS.values()))[0]
        created_days = acquisition_days_ago(rng)
        drafts.append((created_days * DAY + rng.randrange(HOUR), i, country))
    drafts.sort(key=lambda d: (-d[0], d[1]))  # ids follow creation order

    customers: list[Customer] = []
    emails: list[EmailIntent] = []
    phones: list[PhoneIntent] = []
    seen_emails: set[str] = set()
    for number, (created, _, country) in enumerate(drafts, start=1):
        customer = Customer(
            customer_id=f"C{number:06d}", country=country, currency=COUNTRY_CURRENCY[country],
            lines=draw_lines(rng), created=int(created), propensity=rng.gauss(0.0, 1.0),
        )
        email, email_intent = customer_email(rng, customer, seen_emails)
        country_code = messy_country_code(rng, country)
        phone_kind = pick(rng, PHONE_KIND_WEIGHTS)
        phone, valid, style = make_phone(rng, country, phone_kind, country_code is not None)
        if phone is not None:
            phones.append(PhoneIntent(customer.customer_id, phone, valid, country, style))
        emails.append(email_intent)
        updated = customer.created
        if rng.random() < 0.6:
            updated = later(customer.created, rng.random() * customer.created)
        customer.row = {
            "customer_id": customer.customer_id, "email": email, "phone": phone,
            "country_code": country_code, "created_at": At(customer.created),
            "updated_at": At(updated),
        }
        customers.append(customer)
    add_customer_details(seed, customers)
    return customers, emails, phones


# City, state (where the country uses one in addresses) and postal code pattern (# a digit,
# A a letter) of a few places per country; the UAE has no postal codes.
ADDRESSES: dict[str, tuple[tuple[str, str | None, str | None], ...]] = {
    "US": (("New York", "NY", "100##"), ("Los Angeles", "CA", "900##"), ("Chicago", "IL", "606##"),
           ("Houston", "TX", "770##"), ("Seattle", "WA", "981##"), ("Miami", "FL", "331##")),
    "CA": (("Toronto", "ON", "M5V #A#"), ("Montréal", "QC", "H2X #A#"), ("Vancouver", "BC", "V6B #A#")),
    "GB": (("London", None, "SW1A #AA"), ("Manchester", None, "M1 #AA"), ("Edinburgh", None, "EH1 #AA")),
    "DE": (("Berlin", None, "101##"), ("München", None, "803##"), ("Köln", None, "506##")),
    "FR": (("Paris", None, "750##"), ("Lyon", None, "690##"), ("Marseille", None, "130##")),
    "AU": (("Sydney", "NSW", "2000"), ("Melbourne", "VIC", "3000"), ("Brisbane", "QLD", "4000")),
    "BR": (("São Paulo", "SP", "01310-###"), ("Rio de Janeiro", "RJ", "20040-###")),
    "IN": (("Mumbai", "MH", "4000##"), ("Bengaluru", "KA", "5600##")),
    "JP": (("Tokyo", None, "100-####"), ("Osaka", None, "530-####")),
    "MX": (("Ciudad de México", "CDMX", "06###"), ("Guadalajara", "JAL", "44###")),
    "ES": (("Madrid", None, "280##"), ("Barcelona", None, "080##")),
    "IT": (("Roma", None, "001##"), ("Milano", None, "201##")),
    "NL": (("Amsterdam", None, "10## AB"), ("Rotterdam", None, "30## CD")),
    "SE": (("Stockholm", None, "111 ##"), ("Göteborg", None, "411 ##")),
    "SG": (("Singapore", None, "0#####"),),
    "AE": (("Dubai", None, None), ("Abu Dhabi", None, None)),
}


def postal_code(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if ch == "#" else
                   rng.choice("ABDEFGHJLNPQRSTUWXYZ") if ch == "A" else ch for ch in pattern)


def messy_text(rng: random.Random, text: str) -> str:
    """A name or place as typed: mostly as is, some upper or lower case, some padded."""
    roll = rng.random()
    if roll < 0.06:
        return text.upper()
    if roll < 0.12:
        return text.lower()
    if roll < 0.16:
        return f" {text}  "
    return text


def add_customer_details(seed: int, customers: list[Customer]) -> None:
    """Names (those the email was made of), address and locale, on their own random stream so
    that the other columns stay as they were. About 85 % have a name, 60 % an address, 90 % a
    locale (some written en_US)."""
    rng = rng_for(seed, "customer_details")
    for customer in customers:
        named = rng.random() < 0.85
        addressed = rng.random() < 0.6
        city, state, pattern = rng.choice(ADDRESSES[customer.country])
        zip_code = postal_code(rng, pattern) if pattern else None
        language = COUNTRY_LANGUAGE[customer.country]
        separator = "_" if rng.random() < 0.1 else "-"
        has_locale = rng.random() < 0.9
        customer.row.update({
            "first_name": messy_text(rng, customer.first_name) if named else None,
            "last_name": messy_text(rng, customer.last_name) if named else None,
            "city": messy_text(rng, city) if addressed else None,
            "state": state if addressed else None,
            "zip_code": zip_code if addressed else None,
            "locale": f"{language}{separator}{customer.country}" if has_locale else None,
        })


def customer_email(
    rng: random.Random, customer: Customer, seen: set[str]
) -> tuple[str | None, EmailIntent]:
    firsts, lasts = NAME_POOLS[COUNTRY_LANGUAGE[customer.country]]
    first, last = rng.choice(firsts), rng.choice(lasts)
    customer.first_name, customer.last_name = first, last
    local = email_local_part(rng, first, last)
    domain = email_domain(rng, customer.country)
    email = f"{local}@{domain}"
    suffix = 2
    while email in seen:
        email = f"{local}{suffix}@{domain}"
        suffix += 1
    seen.add(email)
    kind = pick(rng, EMAIL_KIND_WEIGHTS)
    if kind == "unicode" and first.isascii() and last.isascii():
        kind = "clean"
    raw, normalized = messy_email(rng, kind, email, first, last)
    return raw, EmailIntent(customer.customer_id, raw, kind, normalized)


# --------------------------------------------------------------------------------------------
# Ecommerce orders
# --------------------------------------------------------------------------------------------


@dataclass
class Order:
    customer: Customer | None
    country: str
    ordered: int
    gross_usd: float
    seq: int
    row: Row = field(default_factory=dict)
    order_id: str = ""


def order_times(rng: random.Random, customer: Customer) -> list[int]:
    """First order around sign-up, then repeat orders as a Poisson process until the customer
    lapses (or as-of)."""
    if rng.random() < 0.75:
        first = later(customer.created, rng.uniform(1 * MINUTE, 20 * MINUTE))
    else:
        first = later(customer.created, rng.uniform(HOUR, 20 * DAY))
    lapse = later(first, rng.expovariate(1.0 / customer.lifetime_days) * DAY)
    times = []
    moment = first
    while moment > max(MINUTE, lapse) and len(times) < 40:
        times.append(moment)
        rate = customer.repeat_rate * (RECENT_PUSH if moment < RECENT_DAYS * DAY else 1.0)
        moment = later(moment, rng.expovariate(rate / 365.0) * DAY)
    return times


def assign_ecommerce_traits(rng: random.Random, customer: Customer) -> None:
    z = customer.propensity
    customer.aov_usd = 48.0 * math.exp(0.30 * z + 0.25 * rng.gauss(0.0, 1.0))
    customer.repeat_rate = 5.5 * math.exp(0.45 * z + 0.35 * rng.gauss(0.0, 1.0))
    customer.lifetime_days = ACTIVE_LIFETIME_DAYS * math.exp(0.35 * z)


def order_amounts(rng: random.Random, order: Order, currency: str) -> tuple[int, int, int]:
    """(gross, discount, net) in minor units; net = gross - discount - tax - shipping."""
    gross = to_minor(order.gross_usd, currency)
    discount = 0
    if rng.random() < 0.3:
        discount = round(gross * rng.choice((0.1, 0.15, 0.2, 0.25)))
    taxable = gross - discount
    rate = TAX_RATE[order.country]
    tax = round(taxable * rate / (1 + rate))
    shipping = 0 if order.gross_usd >= FREE_SHIPPING_USD else to_minor(SHIPPING_USD, currency)
    return gross, discount, taxable - tax - shipping


def order_status(rng: random.Random, order: Order, paid: int) -> tuple[str, int, int]:
    """(status, refunded minor units, updated_at) given the amount paid."""
    roll = rng.random()
    if roll < 0.03:
        return "cancelled", 0, capped_later(order.ordered, rng.uniform(5 * MINUTE, 2 * DAY))
    fulfilled = capped_later(order.ordered, rng.uniform(HOUR, 5 * DAY))
    if roll < 0.12 and paid > 0:
        refunded_at = later(order.ordered, rng.uniform(2 * DAY, 30 * DAY))
        if refunded_at >= 0:  # the refund has happened by as-of
            if roll < 0.075:
                return "partially_refunded", max(1, round(paid * rng.uniform(0.1, 0.6))), refunded_at
            return "refunded", paid, refunded_at
    return "completed", 0, fulfilled


def order_currency(rng: random.Random, currency: str) -> str | None:
    roll = rng.random()
    if roll < 0.02:
        return currency.lower()
    if roll < 0.026:
        return "XYZ"
    if roll < 0.031:
        return None
    return currency


def build_orders(seed: int, scale: float, customers: list[Customer],
                 geo_lift: float = 1.0) -> list[Order]:
    rng = rng_for(seed, "orders")
    orders: list[Order] = []
    buyers = [c for c in customers if ECOMMERCE in c.lines]
    for customer in buyers:
        assign_ecommerce_traits(rng, customer)
        for moment in order_times(rng, customer):
            gross = max(12.0, customer.aov_usd * math.exp(rng.gauss(-0.06, 0.35)))
            orders.append(Order(customer, customer.country, moment, gross, len(orders)))
    countries = list(COUNTRY_WEIGHTS)
    for _ in range(round(BASE_COUNTS["guest_orders"] * scale)):
        country = rng.choices(countries, weights=list(COUNTRY_WEIGHTS.values()))[0]
        moment = int(acquisition_days_ago(rng) * DAY)
        gross = max(12.0, 45.0 * math.exp(rng.gauss(0.0, 0.45)))
        orders.append(Order(None, country, max(moment, HOUR), gross, len(orders)))
    for customer in rng.sample(buyers, min(len(buyers), few(8, scale))):
        skew = -int(rng.uniform(HOUR, 3 * DAY))  # recorded after as-of
        orders.append(Order(customer, customer.country, skew, customer.aov_usd, len(orders)))

    orders.sort(key=lambda o: (-o.ordered, o.seq))
    plant_geo_lift(orders, geo_lift)
    special = flawed_amount_orders(rng, orders, scale)
    for number, order in enumerate(orders, start=100001):
        order.order_id = f"ORD-{number}"
        order.row = order_row(rng, order, special.get(order.seq))
    return orders


def flawed_amount_orders(rng: random.Random, orders: list[Order], scale: float) -> dict[int, str]:
    """A handful of orders with zero (free replacement) or negative (100 % coupon) net."""
    eligible = [o.seq for o in orders if o.customer is not None and o.ordered > 0]
    chosen = rng.sample(eligible, few(6, scale))
    return {seq: ("zero" if i % 2 == 0 else "negative") for i, seq in enumerate(chosen)}


def order_row(rng: random.Random, order: Order, flaw: str | None) -> Row:
    currency = order.customer.currency if order.customer else COUNTRY_CURRENCY[order.country]
    gross, discount, net = order_amounts(rng, order, currency)
    if flaw == "zero":
        gross, discount, net = 0, 0, 0
    elif flaw == "negative":
        discount = gross
        net = -to_minor(SHIPPING_USD, currency)
    status, refunded, updated = order_status(rng, order, gross - discount)
    return {
        "order_id": order.order_id,
        "customer_id": order.customer.customer_id if order.customer else None,
        "ordered_at": At(order.ordered), "status": status,
        "currency": order_currency(rng, currency),
        "gross_revenue": format_minor(gross, currency),
        "discount_amount": format_minor(discount, currency),
        "net_revenue": format_minor(net, currency),
        "refunded_amount": format_minor(refunded, currency),
        "updated_at": At(updated),
    }


# --------------------------------------------------------------------------------------------
# Subscription app
# --------------------------------------------------------------------------------------------


@dataclass
class Subscription:
    customer: Customer
    plan: str
    start: int  # trial start, or subscription start when there is no trial
    trial: bool
    converts: bool
    seq: int
    subscription_id: str = ""
    row: Row = field(default_factory=dict)


def conversion_probability(customer: Customer) -> float:
    return 1.0 / (1.0 + math.exp(-(0.25 + 0.9 * customer.propensity)))


def monthly_months_expected(churn: float = 0.12, horizon: int = 12) -> float:
    return sum((1 - churn) ** k for k in range(horizon))


def build_subscriptions(seed: int, customers: list[Customer]) -> list[Subscription]:
    rng = rng_for(seed, "subscriptions")
    subscriptions: list[Subscription] = []
    for customer in (c for c in customers if SUBSCRIPTION_APP in c.lines):
        plan = "annual" if rng.random() < 0.35 else "monthly"
        trial = rng.random() < 0.88
        start = later(customer.created, rng.uniform(MINUTE, 3 * HOUR))
        if start <= MINUTE:
            start = later(customer.created, rng.uniform(0, max(customer.created - MINUTE, 0)))
        converts = rng.random() < conversion_probability(customer)
        subscriptions.append(Subscription(customer, plan, start, trial, converts,
                                          len(subscriptions)))
    for sub in subscriptions[: len(subscriptions)]:
        lifecycle(rng, sub)
        resubscribe(rng, sub, subscriptions)
    subscriptions.sort(key=lambda s: (-s.start, s.seq))
    for number, sub in enumerate(subscriptions, start=100001):
        sub.subscription_id = f"SUB-{number}"
        sub.row["subscription_id"] = sub.subscription_id
    return subscriptions


def lifecycle(rng: random.Random, sub: Subscription) -> None:
    """Fill the subscription row: trial, first paid period, renewals and cancellation."""
    currency = sub.customer.currency
    trial_started = sub.start if sub.trial else None
    subscribed: int | None = None
    cancelled: int | None = None
    last_change = sub.start
    if sub.trial and not sub.converts:
        if rng.random() < 0.7:
            cancelled = later(sub.start, rng.uniform(HOUR, TRIAL_DAYS * DAY - HOUR))
    else:
        subscribed = later(sub.start, TRIAL_DAYS * DAY) if sub.trial else sub.start
        cancelled = paid_cancellation(rng, sub.plan, subscribed)
        if subscribed < 0:  # the trial is still running at as-of
            subscribed, cancelled = None, None
    if cancelled is not None and cancelled < 0:
        cancelled = None
    if subscribed is not None:
        last_change = last_renewal(sub.plan, subscribed, cancelled)
    if cancelled is not None:
        last_change = cancelled
    price = APP_PRICES[currency][0 if sub.plan == "monthly" else 1]
    sub.row = {
        "subscription_id": "", "customer_id": sub.customer.customer_id, "plan": sub.plan,
        "trial_started_at": At(trial_started) if trial_started is not None else None,
        "subscribed_at": At(subscribed) if subscribed is not None else None,
        "cancelled_at": At(cancelled) if cancelled is not None else None,
        "currency": currency, "price": price, "updated_at": At(last_change),
    }


def paid_cancellation(rng: random.Random, plan: str, subscribed: int) -> int | None:
    if plan == "monthly":
        months = 1
        while rng.random() > 0.12 and months < 36:
            months += 1
        return later(subscribed, months * MONTH_SECONDS - rng.uniform(HOUR, 10 * DAY))
    if rng.random() < 0.4:
        return later(subscribed, rng.uniform(30 * DAY, 330 * DAY))
    return None


def last_renewal(plan: str, subscribed: int, cancelled: int | None) -> int:
    period = MONTH_SECONDS if plan == "monthly" else 365 * DAY
    end = 0 if cancelled is None else cancelled
    renewal = subscribed
    while later(renewal, period) >= end:
        renewal = later(renewal, period)
    return renewal


def resubscribe(rng: random.Random, sub: Subscription, subscriptions: list[Subscription]) -> None:
    """Some cancelled subscribers come back later, without a trial."""
    cancelled = sub.row["cancelled_at"]
    if not isinstance(cancelled, At) or sub.row["subscribed_at"] is None:
        return
    if rng.random() >= 0.3:
        return
    start = later(cancelled.ago, rng.uniform(10 * DAY, 120 * DAY))
    if start <= HOUR:
        return
    plan = "annual" if rng.random() < 0.3 else "monthly"
    again = Subscription(sub.customer, plan, start, False, True, len(subscriptions))
    lifecycle(rng, again)
    subscriptions.append(again)


def build_app_events(seed: int, subscriptions: list[Subscription]) -> list[Row]:
    rng = rng_for(seed, "app_events")
    devices: dict[str, tuple[str, str, str]] = {}
    events: list[tuple[int, int, Row]] = []

    def emit(sub: Subscription, name: str, moment: int, with_subscription: bool) -> None:
        platform, ip, agent = devices[sub.customer.customer_id]
        events.append((moment, len(events), {
            "app_event_id": make_uuid(rng), "customer_id": sub.customer.customer_id,
            "subscription_id": sub.subscription_id if with_subscription else None,
            "event_name": name, "occurred_at": At(moment), "platform": platform, "ip": ip,
            "user_agent": agent,
        }))

    for sub in sorted(subscriptions, key=lambda s: s.seq):
        customer_id = sub.customer.customer_id
        first = customer_id not in devices
        if first:
            platform = "ios" if rng.random() < 0.55 else "android"
            devices[customer_id] = (platform, random_ip(rng),
                                    rng.choice(APP_USER_AGENTS[platform]))
            emit(sub, "app_install", earlier(sub.start, rng.uniform(MINUTE, 40 * MINUTE)), False)
        else:
            emit(sub, "app_open", earlier(sub.start, rng.uniform(MINUTE, 10 * MINUTE)), False)
        trial, subscribed = sub.row["trial_started_at"], sub.row["subscribed_at"]
        if isinstance(trial, At):
            emit(sub, "trial_started", trial.ago, True)
        if isinstance(subscribed, At):
            emit(sub, "subscription_started", subscribed.ago, True)
        for _ in range(rng.choice((0, 1, 1, 2, 2))):
            opened = later(sub.start, rng.uniform(HOUR, 20 * DAY))
            if opened > 0:
                emit(sub, "app_open", opened, False)
    events.sort(key=lambda e: (-e[0], e[1]))
    rows = [row for _, _, row in events]
    add_device_ids(seed, rows)
    return rows


ZERO_ID = "00000000-0000-0000-0000-000000000000"
# App Tracking Transparency answers on iOS 14.5+ (about a third of users allow tracking)
ATT_WEIGHTS = {"authorized": 0.32, "denied": 0.5, "not_determined": 0.13, "restricted": 0.05}
# ATTrackingManager.AuthorizationStatus raw values
ATT_RAW_VALUES = {"not_determined": 0, "restricted": 1, "denied": 2, "authorized": 3}


def add_device_ids(seed: int, rows: list[Row]) -> None:
    """The advertising and vendor ids and the ATT answer an SDK logs, per customer's device, on
    their own random stream. iOS: an IDFV always, an IDFA only when tracking is authorised
    (otherwise iOS hands out zeros, which some SDKs log), the ATT status as the SDK spells it
    (a few as its raw value, 0-3). Android: a GAID, zeros for users who deleted theirs."""
    rng = rng_for(seed, "app_device_ids")
    devices: dict[str, tuple[str | None, str | None, str | None, str | None]] = {}
    for row in rows:
        customer_id = str(row["customer_id"])
        if customer_id not in devices:
            if row["platform"] == "ios":
                status = pick(rng, ATT_WEIGHTS)
                idfa = make_uuid(rng).upper() if status == "authorized" else (
                    ZERO_ID if rng.random() < 0.5 else None)
                if idfa and rng.random() < 0.05:
                    idfa = idfa.lower()
                spelled = str(ATT_RAW_VALUES[status]) if rng.random() < 0.05 else status
                devices[customer_id] = (idfa, make_uuid(rng).upper(), None, spelled)
            else:
                gaid = ZERO_ID if rng.random() < 0.08 else make_uuid(rng)
                devices[customer_id] = (None, None, gaid, None)
        idfa, idfv, gaid, status = devices[customer_id]
        row.update({"idfa": idfa, "idfv": idfv, "gaid": gaid, "att_status": status})


# --------------------------------------------------------------------------------------------
# SaaS signups
# --------------------------------------------------------------------------------------------


@dataclass
class Signup:
    customer: Customer
    signed_up: int
    plan: str
    seats: int
    seq: int
    signup_id: str = ""
    row: Row = field(default_factory=dict)


def saas_plan(rng: random.Random, customer: Customer) -> tuple[str, int]:
    roll = rng.random() - 0.12 * customer.propensity
    if roll < 0.55:
        return "free", rng.choice((1, 1, 1, 2, 3))
    if roll < 0.87:
        return "team", rng.randint(2, 25)
    return "business", min(400, int(10 * math.exp(rng.uniform(0.0, 3.0))))


def build_signups(seed: int, scale: float, customers: list[Customer]) -> list[Signup]:
    rng = rng_for(seed, "signups")
    signups: list[Signup] = []
    saas_customers = [c for c in customers if SAAS in c.lines]
    for customer in saas_customers:
        moment = later(customer.created, rng.uniform(0, 10 * MINUTE))
        plan, seats = saas_plan(rng, customer)
        signups.append(Signup(customer, max(moment, MINUTE), plan, seats, len(signups)))
        if rng.random() < 0.12:
            second = later(moment, rng.uniform(5 * DAY, 200 * DAY))
            if second > HOUR:
                plan, seats = saas_plan(rng, customer)
                signups.append(Signup(customer, second, plan, seats, len(signups)))
    for customer in rng.sample(saas_customers, min(len(saas_customers), few(3, scale))):
        skew = -int(rng.uniform(HOUR, 2 * DAY))  # recorded after as-of
        signups.append(Signup(customer, skew, "free", 1, len(signups)))
    signups.sort(key=lambda s: (-s.signed_up, s.seq))
    for number, signup in enumerate(signups, start=100001):
        signup.signup_id = f"SU-{number}"
        signup.row = signup_row(rng, signup)
    return signups


def signup_row(rng: random.Random, signup: Signup) -> Row:
    activation_share = {"free": 0.3, "team": 0.5, "business": 0.65}[signup.plan]
    activated: int | None = None
    if rng.random() < activation_share:
        activated = later(signup.signed_up, rng.uniform(0.5 * DAY, 21 * DAY))
        if activated < 0:
            activated = None  # not activated yet at as-of
    updated = signup.signed_up if activated is None else activated
    if rng.random() < 0.3:
        updated = capped_later(updated, rng.uniform(HOUR, 30 * DAY))
    return {
        "signup_id": signup.signup_id, "customer_id": signup.customer.customer_id,
        "signed_up_at": At(signup.signed_up), "plan": signup.plan,
        "activated_at": At(activated) if activated is not None else None,
        "seats": str(signup.seats), "updated_at": At(updated),
    }


# --------------------------------------------------------------------------------------------
# Web sessions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    ttp: str | None
    ip: str
    user_agent: str
    mobile: bool


@dataclass(frozen=True)
class Conversion:
    """A web conversion: an order or a signup."""

    kind: str  # order | signup
    conversion_id: str
    customer_id: str | None
    moment: int


@dataclass
class SessionDraft:
    started: int
    customer_id: str | None
    device: Device
    page_url: str
    ttclid: str | None = None
    order_id: str | None = None
    signup_id: str | None = None
    pixel_event_id: str | None = None
    seq: int = 0


def random_ip(rng: random.Random) -> str:
    if rng.random() < 0.1:
        prefix = rng.choice(IPV6_PREFIXES)
        return prefix + "".join(f":{rng.getrandbits(16):x}" for _ in range(6))
    return (f"{rng.choice(IPV4_FIRST_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}."
            f"{rng.randrange(1, 255)}")


def random_device(rng: random.Random) -> Device:
    mobile = rng.random() < 0.65
    agent = rng.choice(MOBILE_USER_AGENTS if mobile else DESKTOP_USER_AGENTS)
    ttp = token(rng, 27, alphanumeric=True) if rng.random() < 0.9 else None
    return Device(ttp, random_ip(rng), agent, mobile)


def make_ttclid(rng: random.Random) -> str:
    return "E.C.P." + token(rng, rng.randint(54, 72))


def landing_url(rng: random.Random, kind: str, ttclid: str | None) -> str:
    host, paths = ("app.example.com", SAAS_PATHS) if kind == "signup" else (
        "shop.example.com", SHOP_PATHS)
    path = rng.choice(paths)
    if ttclid is None:
        return f"https://{host}{path}{rng.choice(ORGANIC_QUERIES)}"
    campaign = rng.choice(TIKTOK_CAMPAIGNS)
    return (f"https://{host}{path}?utm_source=tiktok&utm_medium=paid_social"
            f"&utm_campaign={campaign}&utm_content=ad_{rng.randrange(10**9, 10**10)}"
            f"&ttclid={ttclid}")


def click_device(rng: random.Random, device: Device) -> Device:
    """Ad clicks mostly open in the TikTok in-app browser of a phone."""
    if device.mobile and rng.random() < 0.6:
        return Device(device.ttp, device.ip, rng.choice(IN_APP_USER_AGENTS), True)
    return device


def conversion_sessions(
    rng: random.Random, conv: Conversion, device: Device
) -> list[SessionDraft]:
    """Click, browsing and checkout sessions around one conversion."""
    sessions: list[SessionDraft] = []
    roll = rng.random()
    bucket = "recent" if roll < 0.45 else "old" if roll < 0.65 else "none"
    has_checkout = rng.random() < 0.86
    same_session_click = bucket == "recent" and has_checkout and rng.random() < 0.35
    if bucket == "recent" and not same_session_click:
        gap = 15 * MINUTE + (CLICK_WINDOW_DAYS * DAY - 2 * HOUR) * rng.random() ** 2
        sessions.append(click_session(rng, conv, device, earlier(conv.moment, gap)))
    if bucket == "old" or (bucket == "recent" and rng.random() < 0.25):
        gap = rng.uniform((CLICK_WINDOW_DAYS + 0.5) * DAY, 40 * DAY)
        sessions.append(click_session(rng, conv, device, earlier(conv.moment, gap)))
    for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
        gap = rng.uniform(HOUR, 10 * DAY)
        sessions.append(SessionDraft(earlier(conv.moment, gap), conv.customer_id, device,
                                     landing_url(rng, conv.kind, None)))
    if has_checkout:
        sessions.append(checkout_session(rng, conv, device, same_session_click))
    return sessions


def click_session(rng: random.Random, conv: Conversion, device: Device, started: int
                  ) -> SessionDraft:
    ttclid = make_ttclid(rng)
    return SessionDraft(started, conv.customer_id, click_device(rng, device),
                        landing_url(rng, conv.kind, ttclid), ttclid=ttclid)


def checkout_session(rng: random.Random, conv: Conversion, device: Device, clicked: bool
                     ) -> SessionDraft:
    started = earlier(conv.moment, rng.uniform(2 * MINUTE, 25 * MINUTE))
    ttclid = make_ttclid(rng) if clicked else None
    if clicked:
        device = click_device(rng, device)
    draft = SessionDraft(started, conv.customer_id, device, landing_url(rng, conv.kind, ttclid),
                         ttclid=ttclid)
    if conv.kind == "order":
        draft.order_id = conv.conversion_id
    else:
        draft.signup_id = conv.conversion_id
    if rng.random() < 0.87:  # the pixel fired (not blocked)
        draft.pixel_event_id = conv.conversion_id if rng.random() < 0.8 else make_uuid(rng)
    return draft


def anonymous_session(rng: random.Random) -> SessionDraft:
    started = int(acquisition_days_ago(rng) * DAY) + rng.randrange(HOUR)
    kind = "order" if rng.random() < 0.75 else "signup"
    device = random_device(rng)
    ttclid = make_ttclid(rng) if rng.random() < 0.8 else None
    if ttclid:
        device = click_device(rng, device)
    return SessionDraft(started, None, device, landing_url(rng, kind, ttclid), ttclid=ttclid)


def build_web_sessions(
    seed: int, scale: float, orders: list[Order], signups: list[Signup]
) -> list[Row]:
    rng = rng_for(seed, "web_sessions")
    conversions = [Conversion("order", o.order_id, o.customer.customer_id if o.customer else None,
                              o.ordered) for o in orders if o.ordered > 0]
    conversions += [Conversion("signup", s.signup_id, s.customer.customer_id, s.signed_up)
                    for s in signups if s.signed_up > 0]
    conversions.sort(key=lambda c: c.conversion_id)
    devices: dict[str, list[Device]] = {}
    drafts: list[SessionDraft] = []
    for conv in conversions:
        if conv.customer_id is None:
            device = random_device(rng)
        else:
            if conv.customer_id not in devices:
                devices[conv.customer_id] = [random_device(rng)]
            owned = devices[conv.customer_id]
            if len(owned) == 1 and rng.random() < 0.25:  # a second device, e.g. phone + laptop
                owned.append(random_device(rng))
            device = owned[0] if rng.random() < 0.8 else owned[-1]
        drafts.extend(conversion_sessions(rng, conv, device))
    drafts.extend(anonymous_session(rng)
                  for _ in range(round(BASE_COUNTS["anonymous_sessions"] * scale)))
    for seq, draft in enumerate(drafts):
        draft.seq = seq
    share_pixel_event_ids(rng, drafts, few(2, scale))
    drafts.sort(key=lambda d: (-d.started, d.seq))
    return [session_row(number, d) for number, d in enumerate(drafts, start=1000001)]


def share_pixel_event_ids(rng: random.Random, drafts: list[SessionDraft], pairs: int) -> None:
    """Pixel bug: two different recent orders reported with one event id."""
    candidates = [d for d in drafts if d.order_id and d.pixel_event_id
                  and 0 < d.started < RECENT_DAYS * DAY - DAY]
    chosen = rng.sample(candidates, min(len(candidates), 2 * pairs))
    for first, second in zip(chosen[::2], chosen[1::2], strict=False):
        second.pixel_event_id = first.pixel_event_id


def session_row(number: int, draft: SessionDraft) -> Row:
    return {
        "session_id": f"WS-{number}", "customer_id": draft.customer_id,
        "started_at": At(draft.started), "ttclid": draft.ttclid, "ttp": draft.device.ttp,
        "ip": draft.device.ip, "user_agent": draft.device.user_agent,
        "page_url": draft.page_url, "order_id": draft.order_id, "signup_id": draft.signup_id,
        "pixel_event_id": draft.pixel_event_id,
    }


# --------------------------------------------------------------------------------------------
# pLTV predictions
# --------------------------------------------------------------------------------------------


def expected_value_usd(customer: Customer, subscriptions: list[Subscription],
                       signups: list[Signup]) -> float:
    """What the customer is expected to be worth over the horizon, from its latent traits."""
    value = 0.0
    if ECOMMERCE in customer.lines:
        # Net of discount, tax, shipping, cancellations and refunds.
        life = customer.lifetime_days
        active_days = life * (1 - math.exp(-HORIZON_DAYS / life))
        value += 0.68 * customer.aov_usd * (1.0 + customer.repeat_rate * active_days / 365.0)
    p = conversion_probability(customer)
    for sub in subscriptions:
        price = float(APP_PRICES["USD"][0 if sub.plan == "monthly" else 1])
        months = monthly_months_expected() if sub.plan == "monthly" else 1.0
        value += (p if sub.trial else 1.0) * price * months
    for signup in signups:
        seat_price = SAAS_SEAT_PRICE_USD[signup.plan]
        value += 15.0 if seat_price == 0 else seat_price * signup.seats * 12 * 0.8
    return value


def score(rng: random.Random, customer: Customer, model: str, moment: int) -> Row:
    noise = MODEL_NOISE[model]
    value = customer.expected_value_usd * MODEL_BIAS[model]
    value *= math.exp(rng.gauss(0.0, noise) - noise * noise / 2)
    currency = customer.currency if rng.random() < 0.92 else "USD"
    return {
        "customer_id": customer.customer_id,
        "predicted_ltv": format_local(max(value, 1.0), currency), "currency": currency,
        "model_version": model, "scored_at": At(moment), "horizon_days": str(HORIZON_DAYS),
    }


def customer_scores(rng: random.Random, customer: Customer, active: bool) -> list[Row]:
    """First score a few hours after creation; the new model re-scores recent customers
    when it is deployed and customers active in the last 28 days every week."""
    deployed = NEW_MODEL_DEPLOYED_DAYS_AGO * DAY
    first = later(customer.created, rng.uniform(HOUR, 8 * HOUR))
    if first < 0:
        return []  # not scored yet
    first_model = OLD_MODEL if first > deployed else NEW_MODEL
    rows = [score(rng, customer, first_model, first)]
    if first_model == OLD_MODEL and customer.created <= deployed + BACKFILL_WINDOW_DAYS * DAY:
        rows.append(score(rng, customer, NEW_MODEL, later(deployed, rng.uniform(0, 3 * HOUR))))
    refresh = REFRESH_RUN_HOURS_AGO * HOUR - int(rng.uniform(0, HOUR))
    if active and first > refresh:
        rows.append(score(rng, customer, NEW_MODEL, refresh))
    return rows


def active_customers(orders: list[Order], subscriptions: list[Subscription],
                     signups: list[Signup]) -> set[str]:
    """Customers with an order, trial, subscription or signup in the 28 days before the
    latest weekly re-score."""
    run = REFRESH_RUN_HOURS_AGO * HOUR
    window = range(run, run + RECENT_DAYS * DAY)
    moments: list[tuple[str, int]] = [
        (o.customer.customer_id, o.ordered) for o in orders if o.customer is not None]
    moments += [(s.customer.customer_id, s.start) for s in subscriptions]
    moments += [(s.customer.customer_id, s.signed_up) for s in signups]
    return {customer_id for customer_id, moment in moments if moment in window}


def build_predictions(seed: int, scale: float, customers: list[Customer], orders: list[Order],
                      subscriptions: list[Subscription], signups: list[Signup]) -> list[Row]:
    rng = rng_for(seed, "pltv")
    active = active_customers(orders, subscriptions, signups)
    subs_by_customer: dict[str, list[Subscription]] = {}
    for sub in subscriptions:
        subs_by_customer.setdefault(sub.customer.customer_id, []).append(sub)
    signups_by_customer: dict[str, list[Signup]] = {}
    for signup in signups:
        if signup.signed_up > 0:
            signups_by_customer.setdefault(signup.customer.customer_id, []).append(signup)
    rows: list[Row] = []
    for customer in customers:
        customer.expected_value_usd = expected_value_usd(
            customer, subs_by_customer.get(customer.customer_id, [])[:1],
            signups_by_customer.get(customer.customer_id, []))
        if rng.random() < 0.05:
            continue  # never scored
        rows.extend(customer_scores(rng, customer, customer.customer_id in active))
    add_prediction_flaws(rng, scale, rows, customers)
    rows.sort(key=lambda r: (-at(r["scored_at"]), str(r["customer_id"]), str(r["model_version"])))
    return rows


def at(cell: Cell) -> int:
    assert isinstance(cell, At)
    return cell.ago


def add_prediction_flaws(rng: random.Random, scale: float, rows: list[Row],
                         customers: list[Customer]) -> None:
    """Negative, NaN and huge scores, scores from the future, scores of unknown customers."""
    recent = [r for r in rows if at(r["scored_at"]) < 120 * DAY]
    flawed = rng.sample(recent, min(len(recent), few(4, scale) * 2 + few(2, scale)))
    for i, row in enumerate(flawed):
        if i < few(4, scale):
            row["predicted_ltv"] = "-" + str(row["predicted_ltv"]).lstrip("-")
        elif i < few(4, scale) * 2:
            row["predicted_ltv"] = "NaN"
        else:
            row["predicted_ltv"] = f"{OUTLIER_LTV}.00"
    for customer in rng.sample(customers, few(4, scale)):
        future = score(rng, customer, NEW_MODEL, -int(rng.uniform(HOUR, 5 * DAY)))
        rows.append(future)
    for k in range(few(5, scale)):
        orphan = Customer(f"C{len(customers) + 900001 + k:06d}", "US", "USD", (ECOMMERCE,),
                          int(rng.uniform(DAY, 60 * DAY)), 0.0, expected_value_usd=120.0)
        rows.append(score(rng, orphan, NEW_MODEL, later(orphan.created, 4 * HOUR)))


# --------------------------------------------------------------------------------------------
# Order lines
# --------------------------------------------------------------------------------------------

# (product id, name, category) of the demo store's catalogue
PRODUCTS: tuple[tuple[str, str, str], ...] = (
    ("SKU-1001", "Linen Shirt", "apparel"), ("SKU-1002", "Denim Jacket", "apparel"),
    ("SKU-1003", "Wool Scarf", "accessories"), ("SKU-1004", "Leather Belt", "accessories"),
    ("SKU-1005", "Running Shoes", "footwear"), ("SKU-1006", "Canvas Sneakers", "footwear"),
    ("SKU-1007", "Cotton Tee", "apparel"), ("SKU-1008", "Rain Jacket", "apparel"),
    ("SKU-1009", "Sunglasses", "accessories"), ("SKU-1010", "Travel Backpack", "bags"),
    ("SKU-1011", "Tote Bag", "bags"), ("SKU-1012", "Ankle Socks (3-pack)", "apparel"),
    ("SKU-1013", "Chino Trousers", "apparel"), ("SKU-1014", "Beanie", "accessories"),
    ("SKU-1015", "Hiking Boots", "footwear"), ("SKU-1016", 'Gift Card "Classic"', "gift_cards"),
)


def build_order_items(seed: int, orders: list[Order]) -> list[Row]:
    """The lines of every order with a positive gross revenue, on their own random stream: the
    gross is shared between the lines, each line's share divided by its quantity."""
    rng = rng_for(seed, "order_items")
    rows: list[Row] = []
    for order in sorted(orders, key=lambda o: o.order_id):
        currency = order.customer.currency if order.customer else COUNTRY_CURRENCY[order.country]
        total = round(float(str(order.row["gross_revenue"])) * minor_factor(currency))
        if total <= 0:
            continue
        products = rng.sample(PRODUCTS, rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0])
        weights = [rng.random() + 0.2 for _ in products]
        shares = [int(total * w / sum(weights)) for w in weights]
        shares[-1] += total - sum(shares)
        for number, ((product_id, name, category), share) in enumerate(zip(products, shares, strict=True), 1):
            quantity = rng.choices((1, 2, 3), weights=(75, 18, 7))[0]
            rows.append({
                "order_id": order.order_id, "line_number": str(number), "product_id": product_id,
                "product_name": name, "category": category, "quantity": str(quantity),
                "unit_price": format_minor(max(share // quantity, 0), currency),
            })
    for row in rng.sample(rows, min(len(rows), 6)):  # lines a shop system gets wrong
        row["quantity"] = "0"
    return rows


# --------------------------------------------------------------------------------------------
# Geo experiments
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeoExperiment:
    """A row of the experiment register; moments are offsets before as-of (negative: after)."""

    experiment_id: str
    business_model: str
    pre_period_started: int
    started: int
    ended: int
    maturity_days: int
    lift: float  # planted: the extra order value of customers acquired in treatment geos


# pLTV against business as usual on the store's TikTok campaigns, by country: a finished test
# (read at its 90-day maturity), and one still running (its readout says until when), whose
# pre-period starts after the first one's window (a treated window would bias its baseline). The
# finished one's planted lift doubles the order value of the customers it acquired: its design
# can detect about +80 % with 8 + 8 countries of a few dozen customers each (experiment_design),
# so a smaller effect would read as noise.
GEO_EXPERIMENTS = (
    GeoExperiment("store-pltv-vs-bau", ECOMMERCE, 380 * DAY, 200 * DAY, 140 * DAY, 90, 1.0),
    GeoExperiment("store-pltv-cap", ECOMMERCE, 133 * DAY, 35 * DAY, -21 * DAY, 90, 0.0),
)
GEO_TREATMENT_SHARE = 0.5


def geo_cell(salt: str, experiment_id: str, unit: str, share: float = GEO_TREATMENT_SHARE) -> str:
    """The cell the dbt project assigns a geo unit (int_experiment_geo_cells, the same hash)."""
    digest = hashlib.sha256(f"{salt}:{experiment_id}:{unit}".encode()).hexdigest()
    return "treatment" if int(digest[:8], 16) % 10000 < round(share * 10000) else "control"


def geo_salt(experiment_id: str) -> str:
    """The first salt `<experiment_id>-<n>` that splits the countries evenly in number and in
    expected size (40-60 % of the customers in treatment): re-randomising until the design is
    balanced, before the test starts, as a designer would."""
    total = sum(COUNTRY_WEIGHTS.values())
    for n in range(1, 1000):
        salt = f"{experiment_id}-{n}"
        treated = [c for c in COUNTRY_WEIGHTS if geo_cell(salt, experiment_id, c) == "treatment"]
        weight = sum(COUNTRY_WEIGHTS[c] for c in treated) / total
        if len(treated) == len(COUNTRY_WEIGHTS) // 2 and 0.4 <= weight <= 0.6:
            return salt
    raise AssertionError("no balanced salt")  # unreachable for 16 countries


def build_experiments(scale: float) -> list[Row]:
    """The register; each planned spend is what the demo's TikTok campaigns spend on average in
    the treatment countries over the window (build_ad_spend)."""
    rows = []
    for e in GEO_EXPERIMENTS:
        salt = geo_salt(e.experiment_id)
        treated = frozenset(c for c in COUNTRY_WEIGHTS if geo_cell(salt, e.experiment_id, c) == "treatment")
        planned = expected_spend_usd("tiktok", treated, range(e.started // DAY, e.ended // DAY, -1), scale)
        rows.append({
            "experiment_id": e.experiment_id, "network": "tiktok", "business_model": e.business_model,
            "geo_level": "country", "treatment_share": str(GEO_TREATMENT_SHARE), "salt": salt,
            "pre_period_started_at": At(e.pre_period_started), "started_at": At(e.started),
            "ended_at": At(e.ended), "maturity_days": str(e.maturity_days),
            "planned_spend": f"{planned:.2f}", "currency": "USD",
        })
    return rows


def plant_geo_lift(orders: list[Order], lift_scale: float = 1.0) -> None:
    """Raise by each experiment's lift the order value of the customers whose first order falls
    in its window in a treatment country (what a better value signal does: the campaigns
    acquire better customers there). Draws nothing, so every random stream is unchanged."""
    first: dict[str, int] = {}
    for order in orders:
        if order.customer is not None and order.ordered > 0:
            key = order.customer.customer_id
            first[key] = max(first.get(key, order.ordered), order.ordered)  # earliest = most ago
    for experiment in GEO_EXPERIMENTS:
        lift = experiment.lift * lift_scale
        if lift == 0:
            continue
        salt = geo_salt(experiment.experiment_id)
        for order in orders:
            customer = order.customer
            if customer is None or customer.customer_id not in first:
                continue
            acquired = first[customer.customer_id]
            if (experiment.ended < acquired <= experiment.started
                    and geo_cell(salt, experiment.experiment_id, customer.country) == "treatment"):
                order.gross_usd *= 1 + lift


# --------------------------------------------------------------------------------------------
# SaaS billing
# --------------------------------------------------------------------------------------------

# A paid workspace keeps paying each month with this probability: the 13 invoices a 365-day
# horizon can hold (days 0, 30, ..., 360) pay sum(0.948 ** k, k < 13) = 9.6 months on average,
# the 80 % of a year expected_value_usd counts.
SAAS_MONTHLY_RETENTION = 0.948
# A free workspace upgrades to one team seat with this probability, 1 to 3 months after signup:
# about the 15 USD a free signup adds to expected_value_usd.
SAAS_FREE_UPGRADE = 0.19


def build_saas_invoices(seed: int, signups: list[Signup]) -> list[Row]:
    """Monthly invoices of every paying workspace until it churns or as-of, in the customer's
    currency, on their own random stream: seats x seat price of the plan; a free workspace that
    upgrades pays for one team seat. A few invoices are refunded or void (not revenue)."""
    rng = rng_for(seed, "saas_invoices")
    rows: list[Row] = []
    for signup in sorted(signups, key=lambda s: s.signup_id):
        if not signup.signup_id or signup.signed_up <= 0:
            continue
        plan, seats, start = signup.plan, signup.seats, signup.signed_up
        if plan == "free":
            if rng.random() >= SAAS_FREE_UPGRADE:
                continue
            plan, seats = "team", 1
            start = later(start, rng.uniform(30 * DAY, 90 * DAY))
        currency = signup.customer.currency
        monthly_usd = SAAS_SEAT_PRICE_USD[plan] * seats
        moment = start
        while moment > 0:
            status = rng.choices(("paid", "refunded", "void"), weights=(97, 2, 1))[0]
            rows.append({
                "invoice_id": f"INV-{len(rows) + 100001}", "signup_id": signup.signup_id,
                "customer_id": signup.customer.customer_id, "paid_at": At(moment),
                "amount": format_local(monthly_usd, currency), "currency": currency,
                "status": status,
            })
            if rng.random() >= SAAS_MONTHLY_RETENTION:
                break
            moment = later(moment, 30 * DAY)
    return rows


# --------------------------------------------------------------------------------------------
# Consent and erasure
# --------------------------------------------------------------------------------------------

# Where the demo's consent platform asks before sharing (EEA and UK: opt-in)
OPT_IN_COUNTRIES = frozenset({"GB", "DE", "FR", "ES", "IT", "NL", "SE"})


def build_consents(seed: int, customers: list[Customer]) -> list[Row]:
    rng = rng_for(seed, "consents")
    rows: list[Row] = []

    def decide(customer: Customer, purpose: str, status: str, moment: int) -> None:
        if rng.random() < 0.02:
            status = status.upper()  # a platform that writes 'GRANTED'
        rows.append({"customer_id": customer.customer_id, "purpose": purpose, "status": status,
                     "recorded_at": At(max(moment, 0))})

    for customer in customers:
        banner = earlier(customer.created, rng.uniform(10, 5 * MINUTE))  # first visit's banner
        change = later(customer.created, rng.random() * customer.created)
        if customer.country in OPT_IN_COUNTRIES:
            roll = rng.random()
            if roll < 0.72:
                decide(customer, "advertising", "granted", banner)
                if rng.random() < 0.04:
                    decide(customer, "advertising", "denied", change)
            elif roll < 0.92:
                decide(customer, "advertising", "denied", banner)
                if rng.random() < 0.05:
                    decide(customer, "advertising", "granted", change)
        elif rng.random() < 0.03:
            decide(customer, "advertising", "denied", change)
        if customer.country == "US" and rng.random() < 0.09:
            decide(customer, "sale_or_share", "denied", change)
    rows.sort(key=lambda r: (-at(r["recorded_at"]), str(r["customer_id"]), str(r["purpose"])))
    return rows


def build_erasure_requests(seed: int, customers: list[Customer]) -> list[Row]:
    rng = rng_for(seed, "erasure_requests")
    rows: list[Row] = []
    scale = len(customers) / BASE_COUNTS["customers"]
    for customer in rng.sample(customers, min(len(customers), few(15, scale))):
        recent = rng.random() < 0.4
        since = min(customer.created, RECENT_DAYS * DAY) if recent else customer.created
        rows.append({"customer_id": customer.customer_id,
                     "requested_at": At(int(rng.random() * since))})
    rows.sort(key=lambda r: (-at(r["requested_at"]), str(r["customer_id"])))
    return rows


# --------------------------------------------------------------------------------------------
# Ad spend
# --------------------------------------------------------------------------------------------

SPEND_DAYS = 365
SURGE_DAYS = 56  # the last 8 weeks: TikTok's budget and reported ROAS ramp up
SURGE_SPEND = 2.5  # TikTok's budget at the end of the ramp, times its level before
SURGE_ROAS = 1.8  # TikTok's reported ROAS at the end of the ramp, times its level before
# (network, campaign_id, campaign_name, countries targeted (None: all), share of the network's
# budget, reported ROAS in USD, reported average order value in USD)
CAMPAIGNS: tuple[tuple[str, str, str, tuple[str, ...] | None, float, float, float], ...] = (
    ("tiktok", "1790000000000000001", "TT | Prospecting | Smart+", None, 0.75, 6.2, 64.0),
    ("tiktok", "1790000000000000002", "TT | Spark Ads | UGC", ("US", "GB", "CA", "AU"), 0.25, 5.6, 58.0),
    ("meta", "23850000000000001", "Meta | Advantage+ Shopping", None, 0.7, 6.5, 71.0),
    ("meta", "23850000000000002", "Meta | Retargeting 30d", ("US", "GB", "DE", "FR"), 0.3, 8.0, 66.0),
    ("google", "21000000001", "Google | Search | Brand + Generic", None, 1.0, 6.0, 75.0),
)
# Daily budget in USD per network a year before as-of, at scale 1 (grows with acquisition): MER
# (all revenue, SaaS billing included, over all spend) about 6.
NETWORK_DAILY_USD = {"tiktok": 72.0, "meta": 120.0, "google": 88.0}


def acquisition_growth(days_ago: float) -> float:
    """Density of acquisition_days_ago at ``days_ago``, relative to its value a year back: budgets
    grow with the customers they bring, and step up with the recent push (the density's pole
    just before the last 28 days is cut off at its level 54 days back)."""
    def density(days: float) -> float:
        if days < RECENT_DAYS:
            return 0.30 / RECENT_DAYS
        x = max((days - RECENT_DAYS) / (HISTORY_DAYS - RECENT_DAYS), 0.05)
        return 0.70 / 1.8 * x ** (1 / 1.8 - 1) / (HISTORY_DAYS - RECENT_DAYS)
    return density(days_ago) / density(SPEND_DAYS)


def surge(days_ago: int, top: float) -> float:
    """1 before the last SURGE_DAYS, then a linear ramp up to ``top`` on the last day."""
    if days_ago > SURGE_DAYS:
        return 1.0
    return 1.0 + (top - 1.0) * (SURGE_DAYS - days_ago + 1) / SURGE_DAYS


def expected_spend_usd(network: str, countries: frozenset[str], days_ago: Iterable[int],
                       scale: float = 1.0) -> float:
    """What build_ad_spend spends on average on ``network`` in ``countries`` over ``days_ago``
    (a day after as-of is planned at the last day's level)."""
    total = 0.0
    for day in days_ago:
        day = max(day, 1)
        ramp = surge(day, SURGE_SPEND) if network == "tiktok" else 1.0
        for campaign_network, _, _, targeted, share, _, _ in CAMPAIGNS:
            if campaign_network != network:
                continue
            targeted = targeted or tuple(COUNTRY_WEIGHTS)
            weight = sum(COUNTRY_WEIGHTS[c] for c in targeted)
            in_cell = sum(COUNTRY_WEIGHTS[c] for c in targeted if c in countries) / weight
            total += NETWORK_DAILY_USD[network] * share * scale * acquisition_growth(day) * ramp * in_cell
    return total


def build_ad_spend(seed: int, scale: float) -> list[Row]:
    """Daily spend per campaign and targeted country (days 1-365 before as-of's day), on its
    own random stream so that the other tables do not depend on it."""
    rng = rng_for(seed, "ad_spend")
    rows: list[Row] = []
    for days_ago in range(SPEND_DAYS, 0, -1):
        growth = acquisition_growth(days_ago)
        for network, campaign_id, name, countries, share, roas, aov in CAMPAIGNS:
            targeted = countries or tuple(COUNTRY_WEIGHTS)
            weight = sum(COUNTRY_WEIGHTS[c] for c in targeted)
            spend_ramp = surge(days_ago, SURGE_SPEND) if network == "tiktok" else 1.0
            roas_ramp = surge(days_ago, SURGE_ROAS) if network == "tiktok" else 1.0
            budget = NETWORK_DAILY_USD[network] * share * scale * growth * spend_ramp
            for country in targeted:
                currency = COUNTRY_CURRENCY[country]
                country_share = COUNTRY_WEIGHTS[country] / weight
                spend_usd = budget * country_share * rng.lognormvariate(0.0, 0.15)
                value_usd = spend_usd * roas * roas_ramp * rng.lognormvariate(0.0, 0.25)
                rows.append({
                    "spend_date": DaysAgo(days_ago), "network": network, "campaign_id": campaign_id,
                    "campaign_name": name, "country_code": country,
                    "spend": format_local(spend_usd, currency), "currency": currency,
                    "platform_conversions": str(round(value_usd / aov)),
                    "platform_conversion_value": format_local(value_usd, currency),
                })
    return rows


# --------------------------------------------------------------------------------------------
# Assembly, rendering and writing
# --------------------------------------------------------------------------------------------


def render_cell(cell: Cell, as_of: datetime) -> str:
    if cell is None:
        return ""
    if isinstance(cell, At):
        return (as_of - timedelta(seconds=cell.ago)).isoformat(sep=" ")
    if isinstance(cell, DaysAgo):
        return (as_of.date() - timedelta(days=cell.days)).isoformat()
    return cell


def render(table: str, rows: Iterable[Row], as_of: datetime) -> list[list[str]]:
    columns = TABLE_COLUMNS[table]
    return [[render_cell(row[c], as_of) for c in columns] for row in rows]


def generate(as_of: datetime, seed: int = 42, scale: float = 1.0, geo_lift: float = 1.0) -> DemoData:
    """Build every table for ``as_of`` (naive UTC; sub-second precision is dropped).
    ``geo_lift`` scales the lift planted in the geo experiments (0: none)."""
    as_of = as_of.replace(microsecond=0)
    customers, emails, phones = build_customers(seed, scale)
    orders = build_orders(seed, scale, customers, geo_lift)
    subscriptions = build_subscriptions(seed, customers)
    signups = build_signups(seed, scale, customers)
    raw: dict[str, list[Row]] = {
        "customers": [c.row for c in customers],
        "orders": [o.row for o in orders],
        "web_sessions": build_web_sessions(seed, scale, orders, signups),
        "subscriptions": [s.row for s in subscriptions],
        "app_events": build_app_events(seed, subscriptions),
        "signups": [s.row for s in signups],
        "pltv_predictions": build_predictions(seed, scale, customers, orders, subscriptions,
                                              signups),
        "consents": build_consents(seed, customers),
        "order_items": build_order_items(seed, orders),
        "event_sources": [
            {"event_source": "app", "platform": "android", "country_code": "*",
             "event_source_id": "7000000000000000002"},
            {"event_source": "web", "platform": "*", "country_code": "CA",
             "event_source_id": "CDEMOPIXELCA000000002"},
        ],
        "erasure_requests": build_erasure_requests(seed, customers),
        "saas_invoices": build_saas_invoices(seed, signups),
        "experiments": build_experiments(scale),
        "ad_spend": build_ad_spend(seed, scale),
    }
    tables = {name: render(name, rows, as_of) for name, rows in raw.items()}
    return DemoData(as_of, tables, phones, emails)


def to_csv(table: str, rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS[table])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def write_if_changed(path: Path, content: bytes) -> bool:
    """Atomically replace ``path`` with ``content`` unless it already holds it."""
    if path.exists() and path.read_bytes() == content:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same directory: atomic rename
    try:
        with tmp.open("wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def write_tables(data: DemoData, out_dir: Path) -> list[str]:
    """Write one CSV per table; returns the names of the files that changed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for table, rows in data.tables.items():
        if write_if_changed(out_dir / f"{table}.csv", to_csv(table, rows)):
            changed.append(table)
    return changed


def parse_as_of(text: str | None) -> datetime:
    """Naive UTC as-of: the given ISO timestamp, or now truncated to the hour."""
    if text is None:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the CSV files")
    parser.add_argument("--as-of", help="ISO timestamp (UTC); default: now, truncated to hour")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=positive_float, default=1.0, help="multiplies row counts")
    parser.add_argument("--geo-lift", type=float, default=1.0,
                        help="scales the lift planted in the geo experiments (0: none planted)")
    return parser.parse_args(argv)


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    as_of = parse_as_of(args.as_of)
    data = generate(as_of, seed=args.seed, scale=args.scale, geo_lift=args.geo_lift)
    changed = write_tables(data, args.out)
    counts = ", ".join(f"{name} {len(rows)}" for name, rows in data.tables.items())
    print(f"demo data as of {as_of:%Y-%m-%d %H:%M:%S} (seed {args.seed}, scale {args.scale:g})"
          f" -> {args.out}: {counts}; {len(changed)} file(s) rewritten"
          f" in {time.perf_counter() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
