"""The SQL identity macros against independent Python oracles.

- Email hashing equals hashlib's SHA-256 of the same normalised input (trim, lowercase,
  something@domain.tld, 64-hex pass-through), over generated addresses (hypothesis).
- Phone normalisation equals the phonenumbers library's E.164 for the library's example numbers
  of every region, written in national, international and E.164 formats.
"""

from __future__ import annotations

import csv
import hashlib
import re

import duckdb
import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbt_harness import PROJECT_ROOT

EMAIL_SQL = """
select case_id,
       {{ tiktok_outbox.hash_identifier(tiktok_outbox.normalize_email('raw_email')) }} as email_sha256
from cases
"""

PHONE_SQL = """
select cases.case_id,
       {{ tiktok_outbox.phone_e164(tiktok_outbox.phone_compact('cases.raw_phone'),
            'cc.calling_code', 'cc.trunk_prefix', 'cc.nsn_min_length', 'cc.nsn_max_length') }} as e164
from cases
left join country_calling_codes as cc on cases.country_code = cc.country_code
"""

WHITESPACE = " \t\r\n"
EMAIL_SHAPE = re.compile(r"[^@ \t\r\n]+@[^@ \t\r\n.]+([.][^@ \t\r\n.]+)+")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def oracle_email_sha256(raw: str | None) -> str | None:
    """The documented rule, written independently of the SQL."""
    if raw is None:
        return None
    cleaned = raw.strip(WHITESPACE).lower()
    if SHA256_HEX.fullmatch(cleaned):
        return cleaned
    if EMAIL_SHAPE.fullmatch(cleaned):
        return hashlib.sha256(cleaned.encode("utf-8")).hexdigest()
    return None


def load_calling_codes() -> pa.Table:
    with open(PROJECT_ROOT / "seeds/reference/country_calling_codes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return pa.table({
        "country_code": [r["country_code"] for r in rows],
        "calling_code": [r["calling_code"] for r in rows],
        "trunk_prefix": [r["trunk_prefix"] or None for r in rows],
        "nsn_min_length": pa.array([int(r["nsn_min_length"]) for r in rows], pa.int32()),
        "nsn_max_length": pa.array([int(r["nsn_max_length"]) for r in rows], pa.int32()),
    })


CALLING_CODES = load_calling_codes()


def run_cases(sql: str, **columns: list) -> dict[int, str | None]:
    """Run compiled SQL over a `cases` table (case_id = row number) and the calling-code seed."""
    n = len(next(iter(columns.values())))
    cases = pa.table({"case_id": list(range(n)), **{k: pa.array(v, pa.string()) for k, v in columns.items()}})
    con = duckdb.connect()
    con.register("cases", cases)
    con.register("country_calling_codes", CALLING_CODES)
    return dict(con.execute(sql).fetchall())


# Realistic addresses: ASCII and accented letters, mixed case, stray whitespace, plus malformed
# and pre-hashed values.
local_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-éñüÉÑÜçÇøØ")
domain_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
padding = st.text(alphabet=WHITESPACE, max_size=3)
tld_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
address = st.builds(
    lambda pre, local, host, tld, post: f"{pre}{local}@{host}.{tld}{post}",
    padding,
    st.text(local_chars, min_size=1, max_size=20),
    st.text(domain_chars, min_size=1, max_size=15),
    st.text(tld_chars, min_size=2, max_size=6),
    padding,
)
malformed = st.one_of(
    st.text(alphabet=st.sampled_from("ab@. \t\n"), max_size=12),
    st.builds(lambda s: s + "@", st.text(local_chars, min_size=1, max_size=10)),
)
prehashed = st.builds(lambda s: hashlib.sha256(s.encode()).hexdigest().upper(), st.text(max_size=10))
email_values = st.one_of(address, malformed, prehashed, st.none())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(email_values, min_size=1, max_size=40))
def test_sql_email_hash_equals_hashlib(compile_inline, emails):
    sql = compile_inline(EMAIL_SQL)
    got = run_cases(sql, raw_email=emails)
    for case_id, raw in enumerate(emails):
        assert got[case_id] == oracle_email_sha256(raw), f"email {raw!r}"


def test_sql_email_known_digests(compile_inline):
    cases = ["  Jane.Doe@Example.COM ", "jane.doe@", "n/a", "", None]
    got = run_cases(compile_inline(EMAIL_SQL), raw_email=cases)
    assert got[0] == "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
    assert [got[i] for i in range(1, 5)] == [None, None, None, None]


# Example numbers that the SQL rules do not normalise like phonenumbers does; each is a
# documented limitation (README, "Identity"): Argentina's mobile '15' national format and
# Belarus' '8 0' trunk prefix.
KNOWN_DIFFERENCES = {("AR", "011 15-2345-6789"), ("BY", "8 0152 45-09-11"), ("BY", "8 029 491-19-11")}


def phonenumbers_cases() -> list[tuple[str, str, str]]:
    fmt = phonenumbers.PhoneNumberFormat
    cases = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None or not phonenumbers.is_valid_number(number):
                continue
            e164 = phonenumbers.format_number(number, fmt.E164)
            for style in (fmt.NATIONAL, fmt.INTERNATIONAL, fmt.E164):
                cases.append((region, phonenumbers.format_number(number, style), e164))
    return cases


def test_sql_phone_matches_phonenumbers_e164(compile_inline):
    cases = phonenumbers_cases()
    assert len(cases) > 1000
    got = run_cases(
        compile_inline(PHONE_SQL),
        country_code=[region for region, _, _ in cases],
        raw_phone=[raw for _, raw, _ in cases],
    )
    mismatches = {
        (region, raw): (expected, got[i])
        for i, (region, raw, expected) in enumerate(cases)
        if got[i] != expected
    }
    assert set(mismatches) == KNOWN_DIFFERENCES, mismatches


@pytest.mark.parametrize(
    ("country", "raw", "expected"),
    [
        ("US", "(415) 555-0132", "+14155550132"),
        ("US", "1-415-555-0132", "+14155550132"),
        ("GB", "+44 (0)20 7946 0018", "+442079460018"),
        ("GB", "0044 20 7946 0018", "+442079460018"),
        ("IT", "06 1234 5678", "+390612345678"),
        ("DE", "030 123456789", "+4930123456789"),
        ("US", "12345", None),
        ("US", "call me", None),
        (None, "030 123456789", None),
        ("GB", "+999 1234", None),
    ],
)
def test_sql_phone_cases(compile_inline, country, raw, expected):
    got = run_cases(compile_inline(PHONE_SQL), country_code=[country], raw_phone=[raw])
    assert got[0] == expected
