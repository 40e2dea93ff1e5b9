"""Tests of scripts/generate_demo_data.py: determinism, the source contract, referential
integrity, recency, the business shapes and the deliberate flaws of the demo data."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
import re
import statistics
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import phonenumbers
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "generate_demo_data.py"
SOURCES = ROOT / "models" / "staging" / "first_party" / "_first_party__sources.yml"
AS_OF = datetime(2026, 11, 25, 6, 0, 0)
SEED = 42
RECENT = AS_OF - timedelta(days=28)
TABLES = ("customers", "orders", "web_sessions", "subscriptions", "app_events", "signups",
          "pltv_predictions", "consents", "erasure_requests", "order_items", "event_sources",
          "saas_invoices", "experiments", "ad_spend")

Rows = list[dict[str, str]]


def load_generator() -> ModuleType:
    return load_script("generate_demo_data")


def run_cli(out: Path, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--as-of", AS_OF.isoformat(),
         "--seed", str(SEED), *extra],
        check=True, capture_output=True, text=True, timeout=60,
    )
    return result.stdout


def ts(text: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text), text
    return datetime.fromisoformat(text)


def is_valid_phone(raw: str, region: str | None) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(raw, region))
    except phonenumbers.NumberParseException:
        return False


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    run_cli(out)
    return out


@pytest.fixture(scope="module")
def data(gen: ModuleType) -> Any:  # the generator's DemoData
    return gen.generate(AS_OF, seed=SEED, scale=1.0)


@pytest.fixture(scope="module")
def t(out_dir: Path) -> dict[str, Rows]:
    tables = {}
    for table in TABLES:
        with (out_dir / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
            tables[table] = list(csv.DictReader(handle))
    return tables


# --- determinism and writing ---------------------------------------------------------------


def test_same_seed_and_as_of_give_identical_files(out_dir: Path, tmp_path: Path) -> None:
    run_cli(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.csv" for n in TABLES)
    for table in TABLES:
        name = f"{table}.csv"
        assert (tmp_path / name).read_bytes() == (out_dir / name).read_bytes(), name


def test_rerun_rewrites_nothing(out_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()}
    stdout = run_cli(out_dir)
    assert "0 file(s) rewritten" in stdout
    assert {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()} == before


def test_written_files_are_what_generate_returns(gen: ModuleType, data, out_dir: Path) -> None:
    for table in TABLES:
        assert gen.to_csv(table, data.tables[table]) == (out_dir / f"{table}.csv").read_bytes()


def test_later_as_of_shifts_timestamps_and_keeps_everything_else(gen: ModuleType, data) -> None:
    shift = timedelta(days=3, hours=5)
    shifted = gen.generate(AS_OF + shift, seed=SEED, scale=1.0)
    for table in TABLES:
        columns = gen.TABLE_COLUMNS[table]
        time_columns = {i for i, c in enumerate(columns) if c.endswith("_at")}
        date_columns = {i for i, c in enumerate(columns) if c.endswith("_date")}
        assert len(shifted.tables[table]) == len(data.tables[table]), table
        for old, new in zip(data.tables[table], shifted.tables[table], strict=True):
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                if i in time_columns and a:
                    assert ts(b) - ts(a) == shift, (table, columns[i])
                elif i in date_columns:  # days: as-of's day moves by 3 (06:00 + 5 hours)
                    assert date.fromisoformat(b) - date.fromisoformat(a) == timedelta(days=3), table
                else:
                    assert a == b, (table, columns[i])


def test_other_seed_gives_other_data(gen: ModuleType, data) -> None:
    other = gen.generate(AS_OF, seed=SEED + 1, scale=0.2)
    assert other.tables["customers"][:50] != data.tables["customers"][:50]


# --- contract, sizes, ids -----------------------------------------------------------------


def test_headers_match_the_source_contract(out_dir: Path) -> None:
    contract = yaml.safe_load(SOURCES.read_text(encoding="utf-8"))
    (source,) = [s for s in contract["sources"] if s["name"] == "first_party"]
    expected = {tbl["name"]: [c["name"] for c in tbl["columns"]] for tbl in source["tables"]}
    assert set(expected) == set(TABLES)
    for table, columns in expected.items():
        with (out_dir / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
            assert next(csv.reader(handle)) == columns, table


@pytest.mark.parametrize(("table", "low", "high"), [
    ("customers", 3000, 3000), ("orders", 4200, 5800), ("web_sessions", 12000, 16500),
    ("subscriptions", 750, 1050), ("app_events", 2500, 3600), ("signups", 650, 950),
    ("pltv_predictions", 3900, 5200), ("consents", 1000, 1450), ("erasure_requests", 15, 15),
    ("order_items", 8000, 11000), ("event_sources", 2, 2), ("ad_spend", 20440, 20440),
])
def test_row_counts_at_scale_one(t: dict[str, Rows], table: str, low: int, high: int) -> None:
    assert low <= len(t[table]) <= high


def test_scale_multiplies_row_counts(gen: ModuleType, data) -> None:
    small = gen.generate(AS_OF, seed=SEED, scale=0.1)
    for table in TABLES:
        if table == "event_sources":  # configuration, not volume: the same rows at every scale
            assert small.tables[table] == data.tables[table]
            continue
        if table == "experiments":  # the same experiments, whose planned spend follows the scale
            assert [r[0] for r in small.tables[table]] == [r[0] for r in data.tables[table]]
            continue
        if table == "ad_spend":  # the same campaigns and days at every scale, budgets scaled
            assert len(small.tables[table]) == len(data.tables[table])
            spend = gen.TABLE_COLUMNS[table].index("spend")
            ratio = (sum(float(r[spend]) for r in small.tables[table])
                     / sum(float(r[spend]) for r in data.tables[table]))
            assert 0.08 < ratio < 0.12
            continue
        ratio = len(small.tables[table]) / len(data.tables[table])
        assert 0.05 < ratio < 0.15, table


@pytest.mark.parametrize(("table", "column", "pattern"), [
    ("customers", "customer_id", r"C\d{6}"), ("orders", "order_id", r"ORD-\d{6}"),
    ("web_sessions", "session_id", r"WS-\d{7}"), ("subscriptions", "subscription_id",
                                                   r"SUB-\d{6}"),
    ("signups", "signup_id", r"SU-\d{6}"),
    ("app_events", "app_event_id", r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                   r"[0-9a-f]{12}"),
])
def test_ids_are_unique_and_well_formed(t: dict[str, Rows], table: str, column: str,
                                        pattern: str) -> None:
    ids = [r[column] for r in t[table]]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(pattern, i) for i in ids)


# --- referential integrity and time ---------------------------------------------------------


def test_references_resolve_apart_from_deliberate_cases(t: dict[str, Rows]) -> None:
    customers = {r["customer_id"] for r in t["customers"]}
    guests = [r for r in t["orders"] if not r["customer_id"]]
    assert 0.01 <= len(guests) / len(t["orders"]) <= 0.03
    assert all(r["customer_id"] in customers for r in t["orders"] if r["customer_id"])
    for table in ("subscriptions", "signups", "app_events"):
        assert all(r["customer_id"] in customers for r in t[table]), table
    assert all(r["customer_id"] in customers for r in t["web_sessions"] if r["customer_id"])
    orders = {r["order_id"] for r in t["orders"]}
    signups = {r["signup_id"] for r in t["signups"]}
    subscriptions = {r["subscription_id"] for r in t["subscriptions"]}
    assert all(r["order_id"] in orders for r in t["web_sessions"] if r["order_id"])
    assert all(r["signup_id"] in signups for r in t["web_sessions"] if r["signup_id"])
    assert all(r["subscription_id"] in subscriptions
               for r in t["app_events"] if r["subscription_id"])
    orphans = {r["customer_id"] for r in t["pltv_predictions"]} - customers
    assert 1 <= len(orphans) <= 10


def test_enough_recent_activity(t: dict[str, Rows]) -> None:
    def recent_share(table: str, column: str) -> float:
        moments = [ts(r[column]) for r in t[table] if r[column]]
        return sum(RECENT <= m <= AS_OF for m in moments) / len(moments)

    assert recent_share("orders", "ordered_at") >= 0.2
    assert recent_share("subscriptions", "trial_started_at") >= 0.2
    assert recent_share("subscriptions", "subscribed_at") >= 0.2
    assert recent_share("signups", "signed_up_at") >= 0.2


def test_history_spans_about_eighteen_months(t: dict[str, Rows]) -> None:
    first = min(ts(r["created_at"]) for r in t["customers"])
    assert AS_OF - timedelta(days=560) <= first <= AS_OF - timedelta(days=500)
    old_orders = [r for r in t["orders"] if ts(r["ordered_at"]) < RECENT]
    with_sessions = {r["order_id"] for r in t["web_sessions"] if r["order_id"]}
    assert sum(r["order_id"] in with_sessions for r in old_orders) > 100


def test_only_deliberate_rows_lie_after_as_of(t: dict[str, Rows]) -> None:
    deliberate = {("orders", "ordered_at"), ("orders", "updated_at"),
                  ("signups", "signed_up_at"), ("signups", "updated_at"),
                  ("pltv_predictions", "scored_at")}
    for table, rows in t.items():
        for column in (c for c in rows[0] if c.endswith("_at")):
            future = [r for r in rows if r[column] and ts(r[column]) > AS_OF]
            if (table, column) == ("experiments", "ended_at"):  # a test still running
                assert [r["experiment_id"] for r in future] == ["store-pltv-cap"]
            elif (table, column) in deliberate:
                assert 1 <= len(future) <= 20, (table, column)
                assert all(ts(r[column]) <= AS_OF + timedelta(days=5) for r in future)
            else:
                assert not future, (table, column)


def test_updated_at_never_precedes_creation(t: dict[str, Rows]) -> None:
    pairs = {"customers": "created_at", "orders": "ordered_at", "signups": "signed_up_at"}
    for table, created in pairs.items():
        assert all(ts(r["updated_at"]) >= ts(r[created]) for r in t[table]), table
    for r in t["subscriptions"]:
        moments = [ts(r[c]) for c in ("trial_started_at", "subscribed_at", "cancelled_at")
                   if r[c]]
        assert ts(r["updated_at"]) >= max(moments)


# --- ecommerce ------------------------------------------------------------------------------


def test_order_amounts_and_statuses(t: dict[str, Rows]) -> None:
    statuses = Counter(r["status"] for r in t["orders"])
    assert set(statuses) == {"completed", "partially_refunded", "refunded", "cancelled"}
    assert statuses["completed"] / len(t["orders"]) > 0.8
    assert 0.015 <= statuses["cancelled"] / len(t["orders"]) <= 0.05
    non_positive = 0
    for r in t["orders"]:
        gross, discount, net, refunded = (float(r[c]) for c in (
            "gross_revenue", "discount_amount", "net_revenue", "refunded_amount"))
        amounts = (r["gross_revenue"], r["discount_amount"], r["net_revenue"])
        if (r["currency"] or "").upper() == "JPY":
            assert all("." not in a for a in amounts)
        elif (r["currency"] or "").upper() in {"USD", "EUR", "GBP"}:
            assert all(re.fullmatch(r"-?\d+\.\d\d", a) for a in amounts)
        assert net <= gross - discount + 1e-9  # tax and shipping are never negative
        paid = gross - discount
        if r["status"] == "refunded":
            assert math.isclose(refunded, paid)
        elif r["status"] == "partially_refunded":
            assert 0 < refunded < paid
        else:
            assert refunded == 0
        non_positive += net <= 0
    assert 1 <= non_positive <= 12


def test_order_currency_flaws(t: dict[str, Rows]) -> None:
    currencies = Counter(r["currency"] for r in t["orders"])
    assert len({c.upper() for c in currencies if c} - {"XYZ"}) == 12
    lower = sum(n for c, n in currencies.items() if c and c.islower())
    assert 0.005 <= lower / len(t["orders"]) <= 0.05
    assert 0 < currencies["XYZ"] + currencies[""] <= 0.03 * len(t["orders"])


def test_customers_buy_again(t: dict[str, Rows]) -> None:
    per_customer = Counter(r["customer_id"] for r in t["orders"] if r["customer_id"])
    assert sum(n > 1 for n in per_customer.values()) / len(per_customer) > 0.3


# --- web sessions ---------------------------------------------------------------------------


def test_session_identifiers_look_real(t: dict[str, Rows]) -> None:
    sessions = t["web_sessions"]
    clicks = [r for r in sessions if r["ttclid"]]
    assert 0.38 <= len(clicks) / len(sessions) <= 0.52
    assert all(re.fullmatch(r"E\.C\.P\.[A-Za-z0-9_-]{40,}", r["ttclid"]) for r in clicks)
    assert all(f"ttclid={r['ttclid']}" in r["page_url"] for r in clicks)
    assert not any("ttclid=" in r["page_url"] for r in sessions if not r["ttclid"])
    with_ttp = [r for r in sessions if r["ttp"]]
    assert len(with_ttp) / len(sessions) > 0.8
    assert all(re.fullmatch(r"[A-Za-z0-9]{27}", r["ttp"]) for r in with_ttp)
    assert all(r["page_url"].startswith("https://") for r in sessions)
    ipv6 = sum(":" in r["ip"] for r in sessions)
    assert 0.02 < ipv6 / len(sessions) < 0.2
    assert 0.1 < sum(not r["customer_id"] for r in sessions) / len(sessions) < 0.3


def test_checkout_sessions_and_pixel_event_ids(t: dict[str, Rows]) -> None:
    moments = {r["order_id"]: ts(r["ordered_at"]) for r in t["orders"]}
    moments |= {r["signup_id"]: ts(r["signed_up_at"]) for r in t["signups"]}
    checkouts = [r for r in t["web_sessions"] if r["order_id"] or r["signup_id"]]
    for r in checkouts:
        lead = moments[r["order_id"] or r["signup_id"]] - ts(r["started_at"])
        assert timedelta(minutes=1) <= lead <= timedelta(minutes=30)
    with_pixel = {r["order_id"] or r["signup_id"] for r in checkouts if r["pixel_event_id"]}
    assert 0.65 <= len(with_pixel) / len(moments) <= 0.85
    pixel_ids = Counter(r["pixel_event_id"] for r in checkouts if r["pixel_event_id"])
    shared = [pid for pid, n in pixel_ids.items() if n > 1]
    assert len(shared) == 2 and all(pixel_ids[pid] == 2 for pid in shared)
    uuids = [pid for pid in pixel_ids if re.fullmatch(r"[0-9a-f-]{36}", pid)]
    assert 0.1 < len(uuids) / len(pixel_ids) < 0.35


def test_conversions_have_recent_old_and_no_clicks(t: dict[str, Rows]) -> None:
    clicks: dict[str, list[datetime]] = {}
    for r in t["web_sessions"]:
        if r["ttclid"] and r["customer_id"]:
            clicks.setdefault(r["customer_id"], []).append(ts(r["started_at"]))
    kinds = Counter()
    for r in t["orders"]:
        if not r["customer_id"] or ts(r["ordered_at"]) > AS_OF:
            continue
        ordered = ts(r["ordered_at"])
        ages = [ordered - c for c in clicks.get(r["customer_id"], []) if c <= ordered]
        kinds["none" if not ages else "recent" if min(ages) <= timedelta(days=7) else "old"] += 1
    total = sum(kinds.values())
    assert all(kinds[k] / total > 0.1 for k in ("none", "recent", "old")), kinds


# --- subscription app and SaaS ----------------------------------------------------------------


def test_app_events_mirror_subscriptions(t: dict[str, Rows]) -> None:
    subs = {r["subscription_id"]: r for r in t["subscriptions"]}
    events = Counter(r["event_name"] for r in t["app_events"])
    assert set(events) == {"app_install", "app_open", "trial_started", "subscription_started"}
    column = {"trial_started": "trial_started_at", "subscription_started": "subscribed_at"}
    seen = set()
    for r in t["app_events"]:
        assert r["platform"] in {"ios", "android"}
        if r["event_name"] in column:
            sub = subs[r["subscription_id"]]
            assert r["occurred_at"] == sub[column[r["event_name"]]]
            assert r["customer_id"] == sub["customer_id"]
            seen.add((r["subscription_id"], r["event_name"]))
    for sub_id, sub in subs.items():
        for name, col in column.items():
            assert bool(sub[col]) == ((sub_id, name) in seen)


def test_subscription_shapes(t: dict[str, Rows], gen: ModuleType) -> None:
    subs = t["subscriptions"]
    assert {r["plan"] for r in subs} == {"monthly", "annual"}
    trials = [r for r in subs if r["trial_started_at"]]
    assert 0.75 <= len(trials) / len(subs) <= 0.95
    assert any(r["subscribed_at"] for r in subs if not r["trial_started_at"])
    for r in trials:
        if r["subscribed_at"]:
            assert ts(r["subscribed_at"]) - ts(r["trial_started_at"]) == timedelta(days=7)
    mature = [r for r in trials if ts(r["trial_started_at"]) < AS_OF - timedelta(days=8)]
    assert 0.45 <= sum(bool(r["subscribed_at"]) for r in mature) / len(mature) <= 0.65
    assert any(r["cancelled_at"] for r in subs)
    for r in subs:
        monthly, annual = gen.APP_PRICES[r["currency"]]
        assert r["price"] == (monthly if r["plan"] == "monthly" else annual)


def test_signup_shapes(t: dict[str, Rows]) -> None:
    signups = t["signups"]
    assert {r["plan"] for r in signups} == {"free", "team", "business"}
    assert all(int(r["seats"]) >= 1 for r in signups)
    activated = [r for r in signups if r["activated_at"]]
    assert 0.3 <= len(activated) / len(signups) <= 0.5
    assert all(ts(r["activated_at"]) > ts(r["signed_up_at"]) for r in activated)


# --- pLTV -----------------------------------------------------------------------------------


def test_predictions_follow_customers_and_carry_flaws(t: dict[str, Rows]) -> None:
    created = {r["customer_id"]: ts(r["created_at"]) for r in t["customers"]}
    preds = t["pltv_predictions"]
    assert {r["model_version"] for r in preds} == {"pltv-2026.06", "pltv-2026.10"}
    assert {r["horizon_days"] for r in preds} == {"365"}
    for r in preds:
        if r["customer_id"] in created:
            assert ts(r["scored_at"]) > created[r["customer_id"]]
    scored = {r["customer_id"] for r in preds if ts(r["scored_at"]) <= AS_OF}
    assert 0.02 <= 1 - len(scored & set(created)) / len(created) <= 0.08
    values = [r["predicted_ltv"] for r in preds]
    assert 1 <= values.count("NaN") <= 10
    numbers = [float(v) for v in values if v != "NaN"]
    assert 1 <= sum(v < 0 for v in numbers) <= 10
    assert 1 <= sum(v >= 1e9 for v in numbers) <= 3


def test_predictions_track_realised_value_with_a_biased_old_model(gen: ModuleType,
                                                                  t: dict[str, Rows]) -> None:
    customers = {r["customer_id"]: ts(r["created_at"]) for r in t["customers"]}
    realised: Counter[str] = Counter()
    for r in t["orders"]:
        currency = (r["currency"] or "").upper()
        if r["customer_id"] and r["status"] != "cancelled" and currency in gen.FX_PER_USD:
            if ts(r["ordered_at"]) <= customers[r["customer_id"]] + timedelta(days=365):
                net = float(r["net_revenue"]) - float(r["refunded_amount"])
                realised[r["customer_id"]] += net / gen.FX_PER_USD[currency]
    other_lines = {r["customer_id"] for r in t["subscriptions"] + t["signups"]}
    predicted, actual = [], []
    for r in t["pltv_predictions"]:
        cid = r["customer_id"]
        if (r["model_version"] != "pltv-2026.06" or cid not in realised or cid in other_lines
                or customers[cid] > AS_OF - timedelta(days=365) or r["predicted_ltv"] == "NaN"):
            continue
        value = float(r["predicted_ltv"]) / gen.FX_PER_USD[r["currency"]]
        if 0 < value < 1e8:
            predicted.append(value)
            actual.append(max(realised[cid], 0.0))
    assert len(predicted) > 100
    log_corr = statistics.correlation([math.log(p) for p in predicted],
                                      [math.log1p(a) for a in actual])
    assert log_corr > 0.3
    assert 1.0 < statistics.mean(predicted) / statistics.mean(actual) < 1.6


# --- identity fields ------------------------------------------------------------------------


def test_phones_are_valid_exactly_when_intended(data) -> None:
    mismatched = [p for p in data.phones if is_valid_phone(p.raw, p.region) != p.valid]
    assert not mismatched, mismatched[:5]
    valid = [p for p in data.phones if p.valid]
    styles = Counter(p.style for p in valid)
    assert {"national", "intl", "intl_00", "e164", "intl_dashed"} <= set(styles)
    regions = {phonenumbers.region_code_for_number(phonenumbers.parse(p.raw, p.region))
               for p in valid}
    assert regions == {"US", "CA", "GB", "DE", "FR", "AU", "BR", "IN", "JP", "MX", "ES", "IT",
                       "NL", "SE", "SG", "AE"}
    assert any(p.raw.startswith(("+39 0", "+390")) for p in valid)
    invalid = [p for p in data.phones if not p.valid]
    assert {"invalid", "blank"} <= {p.style for p in invalid}
    assert 0.01 < len(invalid) / len(data.phones) < 0.15


def test_national_phones_belong_to_the_written_country(data, t: dict[str, Rows]) -> None:
    country = {r["customer_id"]: r["country_code"] for r in t["customers"]}
    for p in data.phones:
        if p.style == "national":
            assert country[p.customer_id].strip().upper() == p.region


def test_country_codes_are_mostly_clean(t: dict[str, Rows]) -> None:
    codes = [r["country_code"] for r in t["customers"]]
    clean = sum(bool(re.fullmatch(r"[A-Z]{2}", c)) for c in codes)
    assert 0.85 < clean / len(codes) < 0.97
    assert 0.01 < codes.count("") / len(codes) < 0.06
    assert any(c != c.strip() for c in codes) and any(c.islower() for c in codes)


def test_emails_carry_their_intended_flaws(data) -> None:
    kinds = Counter(e.kind for e in data.emails)
    assert set(kinds) == {"clean", "mixed_case", "padded", "unicode", "hashed", "invalid",
                          "blank", "null"}
    assert kinds["clean"] / len(data.emails) > 0.6
    for e in data.emails:
        if e.kind == "hashed":
            assert e.raw == hashlib.sha256(e.normalized.encode()).hexdigest()
        elif e.kind in ("clean", "mixed_case", "padded", "unicode"):
            assert e.raw.strip().lower() == e.normalized
            assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", e.normalized)
        elif e.kind == "invalid":
            assert not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", e.raw)
        elif e.kind == "blank":
            assert e.raw.strip() == ""
    assert all(e.raw != e.raw.strip() for e in data.emails if e.kind == "padded")
    assert all(not e.raw.isascii() for e in data.emails if e.kind == "unicode")


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    country=st.sampled_from(sorted(load_generator().PHONE_PLANS)),
    kind=st.sampled_from(["national", "international", "foreign"]),
    national_allowed=st.booleans(),
)
def test_every_intended_valid_phone_is_valid(seed: int, country: str, kind: str,
                                             national_allowed: bool) -> None:
    generator = sys.modules["generate_demo_data"]
    raw, valid, style = generator.make_phone(random.Random(seed), country, kind,
                                             national_allowed)
    assert valid and is_valid_phone(raw, country), (raw, style)


def test_cli_output_is_plain_utf8_csv(out_dir: Path) -> None:
    text = (out_dir / "customers.csv").read_bytes().decode("utf-8")
    assert "\r" not in text and not text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert all(len(r) == len(rows[0]) == 12 for r in rows)


# --- consent and erasure ---------------------------------------------------------------------


def test_consents_follow_the_region_rule(gen: ModuleType, t: dict[str, Rows]) -> None:
    """Opt-in countries: about 72 % grant advertising at sign-up and 8 % never answer; elsewhere
    only refusals; sale-or-share opt-outs only in the US; a few statuses in capitals."""
    first: dict[str, dict[str, str]] = {}
    for row in t["consents"]:
        assert row["purpose"] in ("advertising", "sale_or_share")
        assert row["status"].lower() in ("granted", "denied")
        ts(row["recorded_at"])
        if row["purpose"] == "advertising":
            first.setdefault(row["customer_id"], row)
    assert any(r["status"].isupper() for r in t["consents"])
    # the generator's own view of each customer's country (country_code is messy on purpose)
    customers, _, _ = gen.build_customers(SEED, 1.0)
    opt_in = [c for c in customers if c.country in gen.OPT_IN_COUNTRIES]
    granted = sum(1 for c in opt_in if c.customer_id in first
                  and first[c.customer_id]["status"].lower() == "granted")
    unanswered = sum(1 for c in opt_in if c.customer_id not in first)
    assert 0.66 < granted / len(opt_in) < 0.78
    assert 0.04 < unanswered / len(opt_in) < 0.12
    elsewhere = {c.customer_id for c in customers if c.country not in gen.OPT_IN_COUNTRIES}
    assert all(r["status"].lower() == "denied" for r in t["consents"]
               if r["customer_id"] in elsewhere and r["purpose"] == "advertising")
    us = {c.customer_id for c in customers if c.country == "US"}
    sale = {r["customer_id"] for r in t["consents"] if r["purpose"] == "sale_or_share"}
    assert sale <= us and 0.05 < len(sale) / len(us) < 0.13


def test_erasure_requests_include_recent_ones(t: dict[str, Rows]) -> None:
    requested = [ts(r["requested_at"]) for r in t["erasure_requests"]]
    assert len({r["customer_id"] for r in t["erasure_requests"]}) == len(requested)
    assert all(moment <= AS_OF for moment in requested)
    assert sum(1 for moment in requested if moment >= AS_OF - timedelta(days=28)) >= 3


def test_order_lines_add_up_to_the_gross_revenue(t: dict[str, Rows]) -> None:
    gross = {o["order_id"]: float(o["gross_revenue"]) for o in t["orders"]}
    lines: dict[str, float] = {}
    for line in t["order_items"]:
        lines[line["order_id"]] = lines.get(line["order_id"], 0.0) + int(line["quantity"]) * float(line["unit_price"])
    assert set(lines) == {k for k, v in gross.items() if v > 0}
    # within the rounding of a unit price (and the lines whose quantity is 0 on purpose)
    close = sum(1 for k, v in lines.items() if abs(v - gross[k]) <= 0.03 * gross[k] + 1)
    assert close / len(lines) > 0.99
    assert sum(1 for line in t["order_items"] if line["quantity"] == "0") >= 1
    assert all(line["product_id"] for line in t["order_items"])  # the staging test would warn


def test_saas_invoices_bill_the_seats_of_paying_workspaces(gen: ModuleType, t: dict[str, Rows]) -> None:
    signups = {s["signup_id"]: s for s in t["signups"]}
    customers = {c["customer_id"]: c for c in t["customers"]}
    invoices = t["saas_invoices"]
    assert len(invoices) > 500
    assert len({i["invoice_id"] for i in invoices}) == len(invoices)
    upgraded = 0
    for invoice in invoices:
        signup = signups[invoice["signup_id"]]
        assert invoice["customer_id"] == signup["customer_id"]
        assert invoice["paid_at"] >= signup["signed_up_at"]
        country = customers[invoice["customer_id"]]["country_code"].strip().upper()
        if country in gen.COUNTRY_CURRENCY:
            assert invoice["currency"] == gen.COUNTRY_CURRENCY[country]
        if signup["plan"] == "free":  # an upgrade to one team seat
            upgraded += 1
            usd = gen.SAAS_SEAT_PRICE_USD["team"]
        else:
            usd = gen.SAAS_SEAT_PRICE_USD[signup["plan"]] * int(signup["seats"])
        assert float(invoice["amount"]) == pytest.approx(usd * gen.FX_PER_USD[invoice["currency"]], rel=0.01, abs=1)
    assert upgraded > 0
    statuses = Counter(i["status"] for i in invoices)
    assert statuses["paid"] > 0.9 * len(invoices) and statuses["refunded"] > 0 and statuses["void"] > 0


def test_the_geo_experiments_plant_their_lift_in_treatment_countries_only(gen: ModuleType) -> None:
    """--geo-lift 0 plants nothing: the orders differ only in amount, only for customers whose
    first order falls in the finished experiment's window in one of its treatment countries, by
    its lift."""
    planted = gen.generate(AS_OF, seed=SEED, scale=0.3)
    unplanted = gen.generate(AS_OF, seed=SEED, scale=0.3, geo_lift=0.0)
    for table in gen.TABLE_COLUMNS:
        if table not in ("orders", "order_items"):
            assert planted.tables[table] == unplanted.tables[table], table
    (finished,) = [e for e in gen.GEO_EXPERIMENTS if e.lift > 0]
    salt = gen.geo_salt(finished.experiment_id)
    treated = {c for c in gen.COUNTRY_WEIGHTS if gen.geo_cell(salt, finished.experiment_id, c) == "treatment"}
    assert len(treated) == 8
    window = (AS_OF - timedelta(seconds=finished.started), AS_OF - timedelta(seconds=finished.ended))
    columns = gen.TABLE_COLUMNS["orders"]
    gross, customer, ordered = (columns.index(c) for c in ("gross_revenue", "customer_id", "ordered_at"))
    amounts = {columns.index(c) for c in ("gross_revenue", "discount_amount", "net_revenue", "refunded_amount")}
    country = {row[0]: row[gen.TABLE_COLUMNS["customers"].index("country_code")].strip().upper()
               for row in planted.tables["customers"]}
    first_order: dict[str, datetime] = {}
    for row in planted.tables["orders"]:
        if row[customer] and ts(row[ordered]) <= AS_OF:
            first_order[row[customer]] = min(first_order.get(row[customer], ts(row[ordered])), ts(row[ordered]))
    changed = 0
    for a, b in zip(planted.tables["orders"], unplanted.tables["orders"], strict=True):
        if a == b:
            continue
        changed += 1
        assert [x for i, x in enumerate(a) if i not in amounts] == [x for i, x in enumerate(b) if i not in amounts]
        assert float(a[gross]) == pytest.approx(float(b[gross]) * (1 + finished.lift), rel=0.01, abs=0.02)
        assert window[0] <= first_order[a[customer]] < window[1]
        if country[a[customer]] in gen.COUNTRY_WEIGHTS:  # a country written (some are null), in any case
            assert country[a[customer]] in treated, a[customer]
    assert changed > 20


# --- ad spend --------------------------------------------------------------------------------

SURGE_WEEKS = 8


def usd(amount: str, currency: str, gen: ModuleType) -> float:
    return float(amount) / gen.FX_PER_USD[currency]


def spend_by_period(gen: ModuleType, t: dict[str, Rows]) -> dict[tuple[str, str], dict[str, float]]:
    """(period, network) -> spend and claimed value in USD: 'recent' is the last 8 weeks (days 1-56
    before as-of's day), 'before' the 44 weeks before them."""
    totals: dict[tuple[str, str], dict[str, float]] = {}
    for row in t["ad_spend"]:
        days_ago = (AS_OF.date() - date.fromisoformat(row["spend_date"])).days
        if days_ago > 7 * 52:
            continue
        period = "recent" if days_ago <= 7 * SURGE_WEEKS else "before"
        total = totals.setdefault((period, row["network"]), {"spend": 0.0, "value": 0.0})
        total["spend"] += usd(row["spend"], row["currency"], gen)
        total["value"] += usd(row["platform_conversion_value"], row["currency"], gen)
    return totals


def order_revenue_by_period(gen: ModuleType, t: dict[str, Rows]) -> dict[str, float]:
    """First-party order revenue (net less refunds, cancelled and unknown currencies left out) in
    USD, by the same periods (subscriptions left out: the same in both periods' comparison)."""
    revenue = {"recent": 0.0, "before": 0.0}
    for order in t["orders"]:
        currency = (order["currency"] or "").strip().upper()
        if order["status"] == "cancelled" or currency not in gen.FX_PER_USD:
            continue
        days_ago = (AS_OF.date() - ts(order["ordered_at"]).date()).days
        if not 1 <= days_ago <= 7 * 52:
            continue
        period = "recent" if days_ago <= 7 * SURGE_WEEKS else "before"
        amount = float(order["net_revenue"]) - float(order["refunded_amount"] or 0)
        revenue[period] += amount / gen.FX_PER_USD[currency]
    return revenue


def test_ad_spend_is_deterministic(gen: ModuleType, data) -> None:
    assert gen.generate(AS_OF, seed=SEED, scale=1.0).tables["ad_spend"] == data.tables["ad_spend"]
    assert gen.generate(AS_OF, seed=SEED + 1, scale=1.0).tables["ad_spend"] != data.tables["ad_spend"]


def test_ad_spend_covers_three_networks_every_day(gen: ModuleType, t: dict[str, Rows]) -> None:
    rows = t["ad_spend"]
    assert {r["network"] for r in rows} == {"tiktok", "meta", "google"}
    days = {date.fromisoformat(r["spend_date"]) for r in rows}
    assert min(days) == AS_OF.date() - timedelta(days=365) and max(days) == AS_OF.date() - timedelta(days=1)
    for network in ("tiktok", "meta", "google"):
        assert len({r["spend_date"] for r in rows if r["network"] == network}) == 365, network
    keys = Counter((r["spend_date"], r["network"], r["campaign_id"], r["country_code"]) for r in rows)
    assert max(keys.values()) == 1
    assert all(r["currency"] == gen.COUNTRY_CURRENCY[r["country_code"]] for r in rows)
    assert all(float(r["spend"]) > 0 and int(r["platform_conversions"]) >= 0 for r in rows)


def test_ad_spend_plants_platform_roas_up_while_revenue_does_not_follow(gen: ModuleType, t: dict[str, Rows]) -> None:
    """TikTok's budget and its reported ROAS rise over the last 8 weeks; first-party revenue does
    not follow: revenue per dollar of total spend (MER) is no higher than before, and the value
    TikTok claims grows far faster than revenue."""
    spend = spend_by_period(gen, t)
    revenue = order_revenue_by_period(gen, t)

    def roas(period: str) -> float:
        return spend[(period, "tiktok")]["value"] / spend[(period, "tiktok")]["spend"]

    def tiktok_share(period: str) -> float:
        return spend[(period, "tiktok")]["spend"] / sum(v["spend"] for (p, _), v in spend.items() if p == period)

    def mer(period: str) -> float:
        return revenue[period] / sum(v["spend"] for (p, _), v in spend.items() if p == period)

    def claimed_to_revenue(period: str) -> float:
        return spend[(period, "tiktok")]["value"] / revenue[period]

    assert roas("recent") > 1.3 * roas("before")
    assert tiktok_share("recent") > 1.3 * tiktok_share("before")
    assert mer("recent") < mer("before")  # the surge buys no revenue: MER falls
    assert claimed_to_revenue("recent") > 1.5 * claimed_to_revenue("before")
    for network in ("meta", "google"):  # the other networks' reported ROAS holds within 10 %
        before = spend[("before", network)]["value"] / spend[("before", network)]["spend"]
        recent = spend[("recent", network)]["value"] / spend[("recent", network)]["spend"]
        assert abs(recent / before - 1) < 0.10, network
