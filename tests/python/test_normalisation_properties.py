"""Properties of the SQL normalisation rules, over generated input (hypothesis), run through the
compiled dbt macros in DuckDB:

- phones: formatting noise (spaces, dashes, dots, slashes, parentheses, surrounding whitespace)
  never changes the E.164 result, for every region's example numbers in every format;
- hashing is idempotent: a 64-lowercase-hex value passes through, hashing a hash changes nothing;
- external_id: trimmed and lowercased, then SHA-256; case and padding never change the hash;
- email: normalising twice equals normalising once; case and padding never change the hash.
"""

from __future__ import annotations

import hashlib
import unicodedata

import duckdb
import phonenumbers
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbt_harness import PROJECT_ROOT

PHONE_SQL = """
select cases.case_id,
       {{ tiktok_outbox.phone_e164(tiktok_outbox.phone_compact('cases.raw'),
            'cc.calling_code', 'cc.trunk_prefix', 'cc.nsn_min_length', 'cc.nsn_max_length') }} as out
from cases
left join country_calling_codes as cc on cases.country_code = cc.country_code
"""
HASH_SQL = "select case_id, {{ tiktok_outbox.hash_identifier('raw') }} as out from cases"
EXTERNAL_SQL = """
select case_id, {{ tiktok_outbox.hash_identifier(tiktok_outbox.normalize_external_id('raw')) }} as out
from cases
"""
EMAIL_SQL = "select case_id, {{ tiktok_outbox.normalize_email('raw') }} as out from cases"
EMAIL_HASH_SQL = """
select case_id, {{ tiktok_outbox.hash_identifier(tiktok_outbox.normalize_email('raw')) }} as out
from cases
"""

WHITESPACE = " \t\r\n"
NOISE = " -./()"
PROPERTY = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

CALLING_CODES = duckdb.sql(
    "select country_code, calling_code, nullif(trunk_prefix, '') as trunk_prefix, "
    "cast(nsn_min_length as integer) as nsn_min_length, "
    "cast(nsn_max_length as integer) as nsn_max_length "
    f"from read_csv('{PROJECT_ROOT / 'seeds/reference/country_calling_codes.csv'}', all_varchar = true)"
).to_arrow_table()


def run(sql: str, raw: list[str | None], country: list[str | None] | None = None) -> list[str | None]:
    columns = {"case_id": list(range(len(raw))), "raw": pa.array(raw, pa.string())}
    if country is not None:
        columns["country_code"] = pa.array(country, pa.string())
    con = duckdb.connect()
    con.register("cases", pa.table(columns))
    con.register("country_calling_codes", CALLING_CODES)
    got = dict(con.execute(sql).fetchall())
    return [got[i] for i in range(len(raw))]


def example_numbers() -> list[tuple[str, str]]:
    """(region, number) in national, international and E.164 format, for every region."""
    fmt = phonenumbers.PhoneNumberFormat
    cases = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if number is None or not phonenumbers.is_valid_number(number):
            continue
        for style in (fmt.NATIONAL, fmt.INTERNATIONAL, fmt.E164):
            cases.append((region, phonenumbers.format_number(number, style)))
    return cases


NUMBERS = example_numbers()


@st.composite
def noisy(draw: st.DrawFn, text: str) -> str:
    """`text` with noise characters inserted between its characters and whitespace around it."""
    out = []
    for ch in text:
        out.append(ch)
        out.append(draw(st.text(alphabet=NOISE, max_size=2)))
    return draw(st.text(WHITESPACE, max_size=2)) + "".join(out) + draw(st.text(WHITESPACE, max_size=2))


@st.composite
def noisy_numbers(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    picked = draw(st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=25))
    return [(region, number, draw(noisy(number.replace(" ", "")))) for region, number in picked]


@PROPERTY
@given(noisy_numbers())
def test_formatting_noise_never_changes_the_e164_result(compile_inline, cases):
    sql = compile_inline(PHONE_SQL)
    regions = [region for region, _, _ in cases]
    clean = run(sql, [number for _, number, _ in cases], regions)
    messy = run(sql, [noise for _, _, noise in cases], regions)
    assert messy == clean
    assert len(NUMBERS) > 500


hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@PROPERTY
@given(st.lists(st.one_of(hex64, st.text(max_size=30)), min_size=1, max_size=30))
def test_hashing_is_idempotent(compile_inline, values):
    sql = compile_inline(HASH_SQL)
    once = run(sql, values)
    twice = run(sql, once)
    assert twice == once
    for raw, hashed in zip(values, once, strict=True):
        if len(raw) == 64 and set(raw) <= set("0123456789abcdef"):
            assert hashed == raw  # already a SHA-256: passed through
        else:
            assert hashed == hashlib.sha256(raw.encode("utf-8")).hexdigest()


ids = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


@PROPERTY
@given(st.lists(st.tuples(ids, st.text(WHITESPACE, max_size=3), st.text(WHITESPACE, max_size=3)),
                min_size=1, max_size=30))
def test_external_id_rule(compile_inline, cases):
    sql = compile_inline(EXTERNAL_SQL)
    plain = [value for value, _, _ in cases]
    variants = [f"{pre}{value.upper()}{post}" for value, pre, post in cases]
    got, got_variants = run(sql, plain), run(sql, variants)
    for value, hashed, variant in zip(plain, got, got_variants, strict=True):
        normalised = value.strip(WHITESPACE).lower()
        if not normalised:
            assert hashed is None
            continue
        expected = (normalised if len(normalised) == 64 and set(normalised) <= set("0123456789abcdef")
                    else hashlib.sha256(normalised.encode("utf-8")).hexdigest())
        assert hashed == expected, value
        if value.upper().lower() == value.lower():  # case folding that round-trips (not 'ß')
            assert variant == hashed, value


address = st.builds(
    lambda local, host, tld: f"{local}@{host}.{tld}",
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-éñü", min_size=1,
            max_size=15),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=5),
)


@PROPERTY
@given(st.lists(st.tuples(st.one_of(address, st.text(max_size=20)), st.text(WHITESPACE, max_size=3)),
                min_size=1, max_size=30))
def test_email_normalisation_is_idempotent_and_ignores_case_and_padding(compile_inline, cases):
    normalise, hashed = compile_inline(EMAIL_SQL), compile_inline(EMAIL_HASH_SQL)
    values = [value for value, _ in cases]
    once = run(normalise, values)
    assert run(normalise, once) == once
    variants = [f"{pad}{value.upper()}{pad}" for value, pad in cases]
    plain_hash, variant_hash = run(hashed, values), run(hashed, variants)
    for value, a, b in zip(values, plain_hash, variant_hash, strict=True):
        if value.upper().lower() == value.lower():
            assert a == b, value


# Every Unicode space separator (category Zs), and whitespace that is not one.
SPACE_SEPARATORS = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"]
EDGES = SPACE_SEPARATORS + ["\t", "\n", "\r", "\u200b", "\ufeff", "x"]


@PROPERTY
@given(st.lists(st.one_of(st.none(), st.builds(
    lambda head, body, tail: head + body + tail,
    st.text(st.sampled_from(EDGES), max_size=3), st.text(max_size=8), st.text(st.sampled_from(EDGES), max_size=3),
)), min_size=1, max_size=40))
def test_trim_spaces_equals_the_engines_trim(compile_inline, texts):
    """DuckDB's trim_spaces skips trim() for strings without an edge space: the result is trim()'s."""
    sql = compile_inline("select case_id, {{ tiktok_outbox.trim_spaces('raw') }} as out from cases")
    assert "case when" in sql  # the DuckDB guard, not the default trim()
    assert run(sql, texts) == run("select case_id, trim(raw) as out from cases", texts)
    assert len(SPACE_SEPARATORS) == 17
