"""The benchmark's peer: drt (PyPI `drt-core`, a reverse-ETL tool) sending the same outbox to the
same emulator, in two modes (`MODES`). `scripts/bench.py` runs it; this module only writes drt's
project.

drt reads a model (SQL) through its DuckDB source and sends it with its REST API destination in
batch mode (`body_mode: batch`): one request per `sync.batch_size` rows, the body rendered by the
Jinja `batch_template` with the chunk in `rows`, as drt's REST API documentation shows. A request
to TikTok carries one `event_source` and `event_source_id`, so there is one sync per pair in the
outbox, run together with `drt run --threads <pairs>`. drt sends one request at a time per sync,
treats every 2xx answer as success (TikTok answers refusals with HTTP 200 and a non-zero `code`)
and keeps no receipts: the emulator's count of accepted events is what the benchmark records.

- `batch_template`: the model selects the outbox columns; the template builds each event's JSON
  (null and empty values left out, as the sender does) in Jinja, row by row.
- `sql_json`: the model builds each event's JSON in SQL with DuckDB's JSON functions
  (`EVENT_JSON_SQL`); the template only joins those strings into the envelope.

Both send every outbox row of the pair (drt has no local checks and no notion of pending), with
`sync.rate_limit` off (drt's default is 10 requests/s) and requests of the sender's batch size
(`max_records_per_request`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

MODES = ("batch_template", "sql_json")
PROFILE = "bench"
# drt's engine hands the destination chunks of `sync.batch_size` rows, which its REST API
# destination splits into requests of `max_records_per_request` (as in drt's documentation).
# It opens a new HTTP client (TLS context included) per chunk, not per request: chunks of ten
# requests keep that cost off each request.
REQUESTS_PER_CHUNK = 10

# The sender's event (payload.build_event): keys in the same order, null and empty values and
# empty objects left out. Email, phone and external id are sent when not null, as the sender does.
# Each object's members are rendered first, each after a ", " (cut from the first), then wrapped
# when there is any. (Of the templates tried, the fastest in drt's Jinja: no per-member function
# calls but drt's `tojson_safe`.)
BATCH_TEMPLATE = """\
{"event_source": {{ event_source }}, "event_source_id": {{ event_source_id }}, "data": [
{%- for row in rows %}{% if not loop.first %},{% endif %}
{%- set user %}
{%- if row.email_sha256 is not none %}, "email": {{ row.email_sha256 | tojson_safe }}{% endif %}
{%- if row.phone_sha256 is not none %}, "phone": {{ row.phone_sha256 | tojson_safe }}{% endif %}
{%- if row.external_id_sha256 is not none %}, "external_id": {{ row.external_id_sha256 | tojson_safe }}
{%- endif %}
{%- if row.ttclid %}, "ttclid": {{ row.ttclid | tojson_safe }}{% endif %}
{%- if row.ttp %}, "ttp": {{ row.ttp | tojson_safe }}{% endif %}
{%- if row.ip %}, "ip": {{ row.ip | tojson_safe }}{% endif %}
{%- if row.user_agent %}, "user_agent": {{ row.user_agent | tojson_safe }}{% endif %}
{%- endset %}
{%- set properties %}
{%- if row.value is not none %}, "value": {{ row.value }}{% endif %}
{%- if row.currency %}, "currency": {{ row.currency | tojson_safe }}{% endif %}
{%- if row.order_id %}, "order_id": {{ row.order_id | tojson_safe }}{% endif %}
{%- endset %}
{"event": {{ row.event | tojson_safe }}, "event_time": {{ row.event_time }},\
 "event_id": {{ row.event_id | tojson_safe }}
{%- if user %}, "user": {{ "{" ~ user[2:] ~ "}" }}{% endif %}
{%- if properties %}, "properties": {{ "{" ~ properties[2:] ~ "}" }}{% endif %}
{%- if row.page_url %}, "page": {"url": {{ row.page_url | tojson_safe }}}{% endif %}}
{%- endfor %}]}"""

JSON_BATCH_TEMPLATE = """\
{"event_source": {{ event_source }}, "event_source_id": {{ event_source_id }}, "data": [\
{{ rows | map(attribute="event_json") | join(",") }}]}"""

# The outbox columns the template mode reads; `value` as a double (the outbox's decimal would
# reach Jinja as a Decimal, which drt's tojson_safe writes as a string).
COLUMNS_SQL = """select event, event_time, event_id, email_sha256, phone_sha256, external_id_sha256,
       ttclid, ttp, ip, user_agent, cast(value as double) as value, currency, order_id, page_url"""

# Each event's JSON in SQL: json_merge_patch onto '{}' drops the null members (RFC 7396), the
# case expressions leave out the objects with nothing in them.
EVENT_JSON_SQL = """select cast(json_merge_patch('{}', json_object(
    'event', event, 'event_time', event_time, 'event_id', event_id,
    'user', case when coalesce(email_sha256, phone_sha256, external_id_sha256, nullif(ttclid, ''),
                               nullif(ttp, ''), nullif(ip, ''), nullif(user_agent, '')) is not null
            then json_object('email', email_sha256, 'phone', phone_sha256,
                             'external_id', external_id_sha256, 'ttclid', nullif(ttclid, ''),
                             'ttp', nullif(ttp, ''), 'ip', nullif(ip, ''),
                             'user_agent', nullif(user_agent, '')) end,
    'properties', case when coalesce(cast(value as varchar), nullif(currency, ''),
                                     nullif(order_id, '')) is not null
                  then json_object('value', cast(value as double), 'currency', nullif(currency, ''),
                                   'order_id', nullif(order_id, '')) end,
    'page', case when nullif(page_url, '') is not null then json_object('url', page_url) end
)) as varchar) as event_json"""


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def json_string(text: str) -> str:
    """`text` as a JSON string literal, to write into a template."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def model_sql(mode: str, outbox: str, event_source: str, event_source_id: str) -> str:
    """The query a sync of `mode` reads: the outbox rows of one event source."""
    select = {"batch_template": COLUMNS_SQL, "sql_json": EVENT_JSON_SQL}[mode]
    return (f"{select}\nfrom {outbox}\nwhere event_source = {sql_literal(event_source)}"
            f" and event_source_id = {sql_literal(event_source_id)}")


def batch_template(mode: str, event_source: str, event_source_id: str) -> str:
    """The `batch_template` of a sync of `mode` for one event source (its envelope written in)."""
    template = {"batch_template": BATCH_TEMPLATE, "sql_json": JSON_BATCH_TEMPLATE}[mode]
    return (template.replace("{{ event_source }}", json_string(event_source))
            .replace("{{ event_source_id }}", json_string(event_source_id)))


def sync_config(mode: str, outbox: str, event_source: str, event_source_id: str, url: str,
                batch_size: int) -> dict[str, Any]:
    """One drt sync (syncs/<name>.yml): one event source's outbox rows to `url`."""
    return {
        "name": f"{mode}_{event_source}_{event_source_id}",
        "description": f"TikTok events of {event_source} {event_source_id} ({mode})",
        "tags": [mode],
        "model": model_sql(mode, outbox, event_source, event_source_id),
        "destination": {
            "type": "rest_api",
            "url": url,
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "auth": {"type": "api_key", "header": "Access-Token", "value_env": "TIKTOK_ACCESS_TOKEN"},
            "body_mode": "batch",
            "max_records_per_request": batch_size,
            "batch_template": batch_template(mode, event_source, event_source_id),
        },
        "sync": {"mode": "full", "batch_size": batch_size * REQUESTS_PER_CHUNK, "on_error": "fail",
                 "rate_limit": {"requests_per_second": 0}},
    }


def write_project(project: Path, home: Path, db: Path, outbox: str, url: str,
                  sources: Sequence[tuple[str, str]], batch_size: int) -> None:
    """drt's project in `project` (drt_project.yml, syncs/), its profile in `home`/.drt."""
    (project / "syncs").mkdir(parents=True, exist_ok=True)
    (home / ".drt").mkdir(parents=True, exist_ok=True)
    dump = {"sort_keys": False, "width": 1000}
    (project / "drt_project.yml").write_text(
        yaml.safe_dump({"name": "tiktok_outbox_bench", "version": "0.1", "profile": PROFILE}, **dump))
    (home / ".drt" / "profiles.yml").write_text(
        yaml.safe_dump({PROFILE: {"type": "duckdb", "database": str(db)}}, **dump))
    for mode in MODES:
        for event_source, event_source_id in sources:
            config = sync_config(mode, outbox, event_source, event_source_id, url, batch_size)
            (project / "syncs" / f"{config['name']}.yml").write_text(yaml.safe_dump(config, **dump))


def drt_env(env: Mapping[str, str], home: Path) -> dict[str, str]:
    """The benchmark's environment for drt: HOME holds its profile, telemetry off."""
    return {**env, "HOME": str(home), "DO_NOT_TRACK": "1"}


def drt_command(drt: Path, mode: str, threads: int) -> list[str]:
    return [str(drt), "run", "--select", f"tag:{mode}", "--threads", str(threads), "--quiet"]


def drt_version(venv: Path) -> str | None:
    """drt-core's version in `venv` (from its dist-info), None when it is not installed."""
    for site in sorted(venv.glob("lib/python*/site-packages")):
        for info in site.glob("drt_core-*.dist-info"):
            return info.name.removeprefix("drt_core-").removesuffix(".dist-info")
    return None


def threads_for(sources: Sequence[Any], concurrency: int) -> int:
    """drt's `--threads`: one per sync, at most the sender's requests in flight."""
    return max(1, min(len(sources), concurrency))
