"""Tests of scripts/bench_peers.py: the requests the benchmark's drt peer sends, in both modes,
carry exactly the events the sender would build, and pass the emulator's full checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from jinja2 import Environment, StrictUndefined
from scripts_loader import load_script

from tiktok_emulator.validate import validate_body
from tiktok_sender.api.payload import EVENT_COLUMNS, build_event

ROOT = Path(__file__).resolve().parents[2]
OUTBOX = "tiktok.tiktok_events_outbox"
HASH = "a" * 64
# Nulls, empty strings, a zero value, quotes, backslashes and non-ASCII text.
ROWS = [
    ("web", "PIXEL1", "CompletePayment", 1760000000, "ord-1", HASH, None, None, "tt-1", "", "1.2.3.4",
     'Mozilla "quoted" \\ ü', 12.5, "USD", "ord-1", "https://example.com/?a=1&b=<2>"),
    ("web", "PIXEL1", "ViewContent", 1760000001, "ev-2", None, None, None, None, None, None, None,
     None, None, None, None),
    ("web", "PIXEL1", "CompletePayment", 1760000002, "ev-3", None, HASH, HASH, "", "ttp-3", None, None,
     0.0, None, "", ""),
    ("app", "APP1", "Purchase", 1760000003, "ev-'4'", HASH, HASH, None, None, None, None, None,
     None, "EUR", None, None),
]


peers = load_script("bench_peers")


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema tiktok")
    con.execute(f"""create table {OUTBOX} (event_source varchar, event_source_id varchar,
        event varchar, event_time bigint, event_id varchar, email_sha256 varchar,
        phone_sha256 varchar, external_id_sha256 varchar, ttclid varchar, ttp varchar, ip varchar,
        user_agent varchar, value decimal(18, 2), currency varchar, order_id varchar,
        page_url varchar)""")
    con.executemany(f"insert into {OUTBOX} values ({', '.join('?' * 16)})", ROWS)
    return con


def render(template: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch body as drt renders it (its Jinja environment: strict, with `tojson_safe`)."""
    env = Environment(undefined=StrictUndefined)
    env.filters["tojson_safe"] = lambda value: json.dumps(value, ensure_ascii=False)
    body: dict[str, Any] = json.loads(env.from_string(template).render(rows=rows))
    return body


@pytest.mark.parametrize("mode", peers.MODES)
@pytest.mark.parametrize(("source", "source_id"), [("web", "PIXEL1"), ("app", "APP1")])
def test_each_mode_sends_the_senders_events(warehouse: duckdb.DuckDBPyConnection, mode: str,
                                            source: str, source_id: str) -> None:
    cursor = warehouse.execute(peers.model_sql(mode, OUTBOX, source, source_id))
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    body = render(peers.batch_template(mode, source, source_id), rows)

    expected = [build_event(*_event_args(row)) for row in ROWS if row[:2] == (source, source_id)]
    assert body["event_source"] == source and body["event_source_id"] == source_id
    assert body["data"] == expected
    assert validate_body(body) == expected  # every event, not only the first (lean mode)


def _event_args(row: tuple[Any, ...]) -> list[Any]:
    columns = dict(zip(("event_source", "event_source_id", "event", "event_time", "event_id",
                        "email_sha256", "phone_sha256", "external_id_sha256", "ttclid", "ttp", "ip",
                        "user_agent", "value", "currency", "order_id", "page_url"), row, strict=True))
    return [columns.get(c) for c in EVENT_COLUMNS]  # the peers' outbox has none of the later columns


def test_project_has_one_sync_per_mode_and_event_source(tmp_path: Path) -> None:
    sources = [("web", "PIXEL1"), ("app", "APP1")]
    peers.write_project(tmp_path / "project", tmp_path / "home", tmp_path / "bench.duckdb", OUTBOX,
                        "http://127.0.0.1:9/open_api/v1.3/event/track/", sources, 1000)

    syncs = [yaml.safe_load(p.read_text()) for p in sorted((tmp_path / "project" / "syncs").glob("*.yml"))]
    assert sorted((s["tags"][0], s["name"]) for s in syncs) == sorted(
        (mode, f"{mode}_{source}_{source_id}") for mode in peers.MODES for source, source_id in sources)
    for sync in syncs:
        assert sync["destination"]["body_mode"] == "batch"
        assert sync["destination"]["max_records_per_request"] == 1000
        assert sync["sync"]["batch_size"] == 1000 * peers.REQUESTS_PER_CHUNK
        assert sync["sync"]["rate_limit"] == {"requests_per_second": 0}
        assert sync["destination"]["auth"]["value_env"] == "TIKTOK_ACCESS_TOKEN"
    profile = yaml.safe_load((tmp_path / "home" / ".drt" / "profiles.yml").read_text())
    assert profile[peers.PROFILE] == {"type": "duckdb", "database": str(tmp_path / "bench.duckdb")}
    assert peers.threads_for(sources, 4) == 2
