"""Helpers for the sender tests: a DuckDB warehouse with a contract-conforming outbox, a dbt
profile pointing at it, the emulator on 127.0.0.1 and a runner for the real `sender` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import orjson
import yaml

from tiktok_emulator import FaultSpec

REPO = Path(__file__).resolve().parents[3]
CONTRACT = REPO / "models" / "marts" / "tiktok_events_outbox.yml"
SENDER = Path(sys.executable).parent / "sender"
TOKEN = "tok-Zq9SECRETvalue-7f3c2e1d"  # distinctive, so a leak is easy to grep for
PIXEL = "CTESTPIXEL0000000001"
APP_ID = "7000000000000000001"


def contract_columns(target_type: str = "duckdb") -> list[tuple[str, str]]:
    """(name, data_type) of the outbox contract, read from the model's YAML, its types rendered
    for `target_type` as dbt renders them (the yml picks some by `target.type`)."""
    spec = yaml.safe_load(CONTRACT.read_text())
    model = next(m for m in spec["models"] if m["name"] == "tiktok_events_outbox")
    render = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return [(c["name"], render.from_string(c["data_type"]).render(target={"type": target_type}))
            for c in model["columns"]]


# Synthetic values per column, as SQL over `i` (0-based row number) and `t` (event_time).
GENERATORS: dict[str, str] = {
    "event_id": "'evt-' || lpad(i::varchar, 8, '0')",
    "event_source": "case when i % 4 = 3 then 'app' else 'web' end",
    "event_source_id": f"case when i % 4 = 3 then '{APP_ID}' else '{PIXEL}' end",
    "event": "case when i % 4 = 3 then 'Purchase' when i % 4 = 2 then 'AddToCart' "
             "else 'CompletePayment' end",
    "event_time": "t",
    "email_sha256": "sha256('user' || i || '@example.com')",
    "phone_sha256": "case when i % 2 = 0 then sha256('+1415555' || lpad(i::varchar, 4, '0')) end",
    "external_id_sha256": "sha256('cust-' || i)",
    "ttclid": "case when i % 3 = 0 then 'E.C.P.' || i end",
    "ttp": "case when i % 4 <> 3 then 'ttp-' || i end",
    "ip": "'203.0.113.' || (i % 250)",
    "user_agent": "'Mozilla/5.0 (X11; Linux x86_64) Test/' || (i % 7)",
    "page_url": "case when i % 4 <> 3 then 'https://shop.example.com/checkout?o=' || i end",
    "value": "((i % 500) + 1.99)",
    "currency": "'USD'",
    "order_id": "'ord-' || i",
    "experiment_cell": "case when i % 5 = 0 then 'holdout' else 'treatment' end",
    "predicted_ltv": "((i % 500) + 10.5)",
    "predicted_ltv_currency": "'USD'",
    "model_version": "'pltv-test-1'",
    "scored_at": "now()::timestamp",
    "calibration_factor": "1.0",
    "is_value_capped": "false",
    "value_basis": "'pltv'",
    "observed_value": "((i % 500) + 1.99)",
    "is_value_anchor": "i % 4 <> 2",
    "canonical_event": "case when i % 4 = 2 then 'add_to_cart' else 'purchase' end",
    "business_model": "'ecommerce'",
    "conversion_id": "'conv-' || i",
    "converted_at": "to_timestamp(t)::timestamp",
    "outboxed_at": "now()::timestamp",
    "uncapped_value": "((i % 500) + 10.5)",
    "limited_data_use": "i % 10 = 7",
    "att_status": "case when i % 4 = 3 then 'AUTHORIZED' end",
    "idfa": "case when i % 4 = 3 then '6D92078A-8246-4BA4-AE5B-' || upper(lpad(to_hex(i), 12, '0')) end",
    "first_name_sha256": "sha256('first' || i)",
    "city": "case when i % 2 = 1 then 'newyork' end",
    "country": "'us'",
    "contents": "case when i % 8 = 0 then '[{\"content_id\":\"SKU-' || i"
                " || '\",\"quantity\":1,\"price\":' || ((i % 500) + 1.99) || '}]' end",
    "content_type": "case when i % 8 = 0 then 'product' end",
    "num_items": "case when i % 8 = 0 then 1 end",
    # one `add` is one build: its rows share an outbox_seq above every row already there, as the
    # dbt project's outbox_seq macro gives them (the clock in microseconds, or the highest + 1)
    "outbox_seq": "greatest(epoch_us(now()), (select coalesce(max(outbox_seq), 0) + 1 from {outbox}))",
}


@dataclass
class Outbox:
    """A DuckDB file holding `tiktok.tiktok_events_outbox` with synthetic rows."""

    path: Path
    schema: str = "tiktok"
    rows: int = 0

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.path))

    def add(self, n: int, *, start: int = 0, age_s: int = 3600) -> None:
        """Append rows i = start .. start+n-1 with event_time = now - age_s - i."""
        columns = contract_columns()
        exprs = ", ".join(
            f"cast({GENERATORS.get(name, 'null')} as {dtype}) as {name}" for name, dtype in columns
        ).replace("{outbox}", f"{self.schema}.tiktok_events_outbox")
        with self.connect() as con:
            con.execute(
                f"insert into {self.schema}.tiktok_events_outbox "
                f"select {exprs} from (select range as i, "
                f"(epoch(now())::bigint - {age_s} - range) as t from range({start}, {start + n}))"
            )
        self.rows += n

    def execute(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def receipts(self, where: str = "true") -> list[dict[str, Any]]:
        with self.connect() as con:
            cur = con.execute(f"select * from {self.schema}.tiktok_delivery_receipts where {where}")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def runs(self) -> list[dict[str, Any]]:
        with self.connect() as con:
            cur = con.execute(f"select * from {self.schema}.tiktok_delivery_runs order by started_at")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def all_text(self) -> str:
        """Every value of every table in the file, as one string (for leak checks)."""
        parts: list[str] = []
        with self.connect() as con:
            tables = con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
            for schema, table in tables:
                for row in con.execute(f'select * from "{schema}"."{table}"').fetchall():
                    parts.extend(str(v) for v in row)
        return "\n".join(parts)


def make_outbox(path: Path, n: int, *, schema: str = "tiktok", age_s: int = 3600) -> Outbox:
    """Create `<schema>.tiktok_events_outbox` with the contract's columns and `n` rows."""
    body = ", ".join(f"{name} {dtype}" for name, dtype in contract_columns())
    with duckdb.connect(str(path)) as con:
        con.execute(f"create schema if not exists {schema}")
        con.execute(f"create table {schema}.tiktok_events_outbox ({body})")
    outbox = Outbox(path, schema)
    if n:
        outbox.add(n, age_s=age_s)
    return outbox


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return orjson.loads(self.stdout)


@dataclass
class Project:
    """A dbt-like working directory: profiles.yml + a warehouse file, and the environment to
    run `sender` in it."""

    root: Path
    outbox: Outbox
    env: dict[str, str] = field(default_factory=dict)

    def sender(self, *args: str, env: Mapping[str, str | None] | None = None,
               timeout: float = 60) -> Result:
        """Run the real `sender` console script in a subprocess."""
        full_env = {**self.env}
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        proc = subprocess.run(
            [str(SENDER), *args], cwd=self.root, env=full_env, capture_output=True, text=True, check=False,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


PROFILES_YML = """\
tiktok_outbox:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('DBT_DUCKDB_PATH', 'target/tiktok_outbox.duckdb') }}"
      schema: tiktok
      threads: 2
"""


def base_env(root: Path, db: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({
        "DBT_PROFILES_DIR": str(root),
        "DBT_DUCKDB_PATH": str(db),
        "TIKTOK_ACCESS_TOKEN": TOKEN,
        "TIKTOK_BACKOFF_BASE": "0.01",
        "TIKTOK_BACKOFF_MAX": "0.05",
        "TIKTOK_TIMEOUT": "5",
    })
    return env


__all__ = ["APP_ID", "PIXEL", "TOKEN", "FaultSpec", "Outbox", "Project", "make_outbox"]


# -- running the CLI in the background, for tests of concurrent runs and signals ----------------


def start(project: Project, *args: str) -> subprocess.Popen[str]:
    """`sender ARGS` started in the project, not waited for."""
    return subprocess.Popen(
        [str(SENDER), *args], cwd=project.root, env=project.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> Result:
    stdout, stderr = proc.communicate(timeout=timeout)
    return Result(proc.returncode, stdout, stderr)


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def accepted_ids(emulator: Any) -> dict[str, int]:
    """event_id -> how often the emulator received it."""
    return {e["payload"]["event_id"]: e["receive_count"] for e in emulator.events()}


def one_line_error(stderr: str) -> str:
    """The single `error: ...` line a user mistake prints (no traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]
