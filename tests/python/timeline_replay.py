"""Replay simulated time: first-party rows land late, twice and corrected; dbt builds and
`sender push` runs at each simulated load; an independent oracle says what TikTok should have
received.

The world is small and written by hand (`make_world`): web orders whose checkout sessions (which
carry the pixel's event_id) land 5 to 90 minutes after the order, orders loaded twice, cancelled,
refunded or with their currency fixed after they landed, ad clicks that land before or after the
conversion went out, a signup whose session is late, a paid subscription whose row is late, and
orders that arrive long after they happened. A schedule of builds (`Build`) replays it against a
DuckDB warehouse, a copy of the dbt project and the emulator; a build may rename the purchase
event in the mapping seed or change the experiment salt, and run with --full-refresh.

The oracle (`expected_outcomes`) is plain Python over the same rows and the same build times. It
does not read the warehouse: it applies the documented rules (README, "Late and corrected data"):
a conversion waits while its own record has not landed and less than tiktok_settle_minutes have
passed since it happened; it goes out at the first build where it is sendable, with the pixel's
event_id if its session has landed by then, the click id of the latest qualifying click that has
landed by then, and the event name the mapping has then; once out it never changes.

`tests/python/test_timeline.py` runs a day around the late arrivals; `scripts/timeline_replay.py`
runs any span hour by hour (a fortnight, say) and prints the same figures.
"""

from __future__ import annotations

import csv
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from dbt_harness import copy_project, dbt_env, release_duckdb

SOURCE = "raw_first_party"
SCHEMA = "tiktok"
SETTLE = timedelta(minutes=60)
CLICK_WINDOW = timedelta(days=7)
MAX_AGE = timedelta(days=28)
FUTURE_TOLERANCE = timedelta(minutes=10)
KNOWN_CURRENCIES = {"USD", "EUR", "GBP"}  # in seeds/reference/fx_rates.csv

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "customers": (("customer_id", "varchar"), ("email", "varchar"), ("phone", "varchar"),
                  ("country_code", "varchar"), ("created_at", "timestamp"), ("updated_at", "timestamp")),
    "orders": (("order_id", "varchar"), ("customer_id", "varchar"), ("ordered_at", "timestamp"),
               ("status", "varchar"), ("currency", "varchar"), ("gross_revenue", "decimal(18,2)"),
               ("discount_amount", "decimal(18,2)"), ("net_revenue", "decimal(18,2)"),
               ("refunded_amount", "decimal(18,2)"), ("updated_at", "timestamp")),
    "web_sessions": (("session_id", "varchar"), ("customer_id", "varchar"), ("started_at", "timestamp"),
                     ("ttclid", "varchar"), ("ttp", "varchar"), ("ip", "varchar"), ("user_agent", "varchar"),
                     ("page_url", "varchar"), ("order_id", "varchar"), ("signup_id", "varchar"),
                     ("pixel_event_id", "varchar")),
    "subscriptions": (("subscription_id", "varchar"), ("customer_id", "varchar"), ("plan", "varchar"),
                      ("trial_started_at", "timestamp"), ("subscribed_at", "timestamp"),
                      ("cancelled_at", "timestamp"), ("currency", "varchar"), ("price", "decimal(18,2)"),
                      ("updated_at", "timestamp")),
    "app_events": (("app_event_id", "varchar"), ("customer_id", "varchar"), ("subscription_id", "varchar"),
                   ("event_name", "varchar"), ("occurred_at", "timestamp"), ("platform", "varchar"),
                   ("ip", "varchar"), ("user_agent", "varchar")),
    "signups": (("signup_id", "varchar"), ("customer_id", "varchar"), ("signed_up_at", "timestamp"),
                ("plan", "varchar"), ("activated_at", "timestamp"), ("seats", "integer"),
                ("updated_at", "timestamp")),
    "pltv_predictions": (("customer_id", "varchar"), ("predicted_ltv", "double"), ("currency", "varchar"),
                         ("model_version", "varchar"), ("scored_at", "timestamp"), ("horizon_days", "integer")),
}


@dataclass(frozen=True)
class Row:
    table: str
    landed_at: datetime
    values: dict[str, Any]


@dataclass(frozen=True)
class Build:
    at: datetime
    full_refresh: bool = False
    purchase_event: str = "CompletePayment"   # what the mapping seed calls a purchase from here on
    salt: str = "timeline-salt-1"


@dataclass
class World:
    rows: list[Row] = field(default_factory=list)

    def add(self, table: str, landed_at: datetime, **values: Any) -> None:
        missing = {c for c, _ in COLUMNS[table]} - set(values)
        self.rows.append(Row(table, landed_at, {**{c: None for c in missing}, **values}))

    def landed(self, table: str, at: datetime) -> list[dict[str, Any]]:
        return [r.values for r in self.rows if r.table == table and r.landed_at <= at]


@dataclass
class Outcome:
    """What TikTok should have received for one conversion, or why not (yet)."""

    state: str                        # sent | excluded | waiting | not_landed
    event: str | None = None
    event_id: str | None = None
    ttclid: str | None = None
    observed_value: float | None = None
    reason: str | None = None
    first_seen_at: datetime | None = None
    waited: bool = False              # some build saw it incomplete inside its settle window
    sent_at: datetime | None = None


# The sender reads the same profile dbt writes with: a DuckDB target at DBT_DUCKDB_PATH.
PROFILES = """\
tiktok_outbox:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('DBT_DUCKDB_PATH') }}"
      schema: tiktok
      threads: 2
"""


def sender_env(workdir: Path, token: str) -> dict[str, str]:
    """The environment `sender push` runs in: a profiles.yml in `workdir`, the token, fast retries."""
    (workdir / "profiles.yml").write_text(PROFILES)
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env.update({"DBT_PROFILES_DIR": str(workdir), "TIKTOK_ACCESS_TOKEN": token,
                "TIKTOK_BACKOFF_BASE": "0.01", "TIKTOK_BACKOFF_MAX": "0.05", "TIKTOK_TIMEOUT": "5"})
    return env


# -- the world ------------------------------------------------------------------------------------


def make_world(start: datetime, hours: int, seed: int = 11, late_orders_per_hour: float = 0.0) -> World:
    """Hand-written scenarios in the first hours after `start`, plus (for long runs) a stream of
    ordinary orders, each with a checkout session landing 0-90 minutes late."""
    rng = random.Random(seed)
    w = World()
    customers = [f"TC{i:03d}" for i in range(60)]
    long_ago = start - timedelta(days=400)
    for i, c in enumerate(customers):
        w.add("customers", start, customer_id=c, email=f"timeline.{i}@example.com", phone=None,
              country_code="US", created_at=long_ago, updated_at=long_ago)
        w.add("pltv_predictions", start, customer_id=c, predicted_ltv=round(40 + 37.5 * (i % 17) + i, 2),
              currency="USD", model_version="pltv-timeline", scored_at=start - timedelta(days=3),
              horizon_days=365)

    def order(order_id: str, customer: str, at: datetime, landed: datetime, *, status: str = "completed",
              currency: str = "USD", net: float = 80.0, refunded: float = 0.0, updated: datetime | None = None) -> None:
        w.add("orders", landed, order_id=order_id, customer_id=customer, ordered_at=at, status=status,
              currency=currency, gross_revenue=net + 20, discount_amount=0, net_revenue=net,
              refunded_amount=refunded, updated_at=updated or at)

    def checkout(order_id: str, customer: str, at: datetime, landed: datetime, *, ttclid: str | None = None) -> None:
        w.add("web_sessions", landed, session_id=f"WS-{order_id}", customer_id=customer,
              started_at=at - timedelta(minutes=4), ttclid=ttclid, ttp=f"ttp-{customer}", ip="203.0.113.9",
              user_agent="Mozilla/5.0 Timeline", page_url="https://shop.example.com/checkout",
              order_id=order_id, pixel_event_id=f"px-{order_id}")

    def click(session_id: str, customer: str, at: datetime, landed: datetime) -> None:
        w.add("web_sessions", landed, session_id=session_id, customer_id=customer, started_at=at,
              ttclid=f"E.C.P.{session_id}", ttp=f"ttp-{customer}", ip="203.0.113.9",
              user_agent="Mozilla/5.0 Timeline", page_url="https://shop.example.com/?ttclid=1")

    t = start + timedelta(minutes=10)
    land = timedelta(minutes=2)
    # history: orders of the last three days, loaded complete at the first load
    for i in range(12):
        at = start - timedelta(hours=5 + 6 * i)
        order(f"HIST-{i}", customers[i], at, start)
        checkout(f"HIST-{i}", customers[i], at, start)
    # complete orders: order and session land together, out at the next build with no wait
    for i in range(12):
        at = t + timedelta(minutes=13 * i)
        order(f"OK-{i}", customers[12 + i], at, at + land)
        checkout(f"OK-{i}", customers[12 + i], at, at + land)
    # the checkout session lands 5 to 90 minutes after the order
    for i, delay in enumerate((5, 15, 25, 35, 45, 55, 65, 75, 85, 90)):
        at = t + timedelta(minutes=17 * i)
        order(f"LATE-{i}", customers[24 + i], at, at + land)
        checkout(f"LATE-{i}", customers[24 + i], at, at + land + timedelta(minutes=delay))
    # loaded twice: an identical second copy, and a corrected copy with a later updated_at
    at = t + timedelta(minutes=30)
    order("DUP-1", customers[34], at, at + land)
    order("DUP-1", customers[34], at, at + land + timedelta(minutes=40))
    checkout("DUP-1", customers[34], at, at + land)
    order("DUP-2", customers[35], at, at + land, net=90.0)
    order("DUP-2", customers[35], at, at + land + timedelta(minutes=20), net=70.0, updated=at + timedelta(minutes=15))
    checkout("DUP-2", customers[35], at, at + land + timedelta(minutes=45))
    # cancelled before it went out (its session is late, so it waits): never sent
    at = t + timedelta(minutes=50)
    order("CANCEL-EARLY", customers[36], at, at + land)
    order("CANCEL-EARLY", customers[36], at, at + timedelta(minutes=25), status="cancelled",
          updated=at + timedelta(minutes=20))
    checkout("CANCEL-EARLY", customers[36], at, at + timedelta(minutes=80))
    # cancelled after it went out: stays sent, once
    at = t + timedelta(minutes=55)
    order("CANCEL-LATE", customers[37], at, at + land)
    checkout("CANCEL-LATE", customers[37], at, at + land)
    order("CANCEL-LATE", customers[37], at, at + timedelta(hours=4), status="cancelled",
          updated=at + timedelta(hours=4))
    # refunded while waiting: the observed value sent is net of the refund
    at = t + timedelta(minutes=70)
    order("REFUND", customers[38], at, at + land, net=100.0)
    order("REFUND", customers[38], at, at + timedelta(minutes=30), status="partially_refunded", net=100.0,
          refunded=30.0, updated=at + timedelta(minutes=25))
    checkout("REFUND", customers[38], at, at + timedelta(minutes=50))
    # an unknown currency, fixed at the source three hours later: sent once fixed
    at = t + timedelta(minutes=80)
    order("FX-FIX", customers[39], at, at + land, currency="XYZ")
    checkout("FX-FIX", customers[39], at, at + land)
    order("FX-FIX", customers[39], at, at + timedelta(hours=3), currency="EUR", updated=at + timedelta(hours=3))
    # an ad click two days earlier that lands before the order goes out (carried) ...
    at = t + timedelta(minutes=95)
    click("CLICK-IN-TIME", customers[40], at - timedelta(days=2), at + timedelta(minutes=20))
    order("CLICK-1", customers[40], at, at + land)
    checkout("CLICK-1", customers[40], at, at + timedelta(minutes=30))
    # ... and one that lands after the order went out (not carried, nothing resent)
    click("CLICK-TOO-LATE", customers[41], at - timedelta(days=1), at + timedelta(hours=5))
    order("CLICK-2", customers[41], at, at + land)
    checkout("CLICK-2", customers[41], at, at + land)
    # the order row itself lands five hours late (with its session): out at the next build
    at = t + timedelta(minutes=20)
    order("LATE-ROW", customers[42], at, at + timedelta(hours=5))
    checkout("LATE-ROW", customers[42], at, at + timedelta(hours=5))
    # no checkout session ever (a phone order): waits the settle window, then a derived id
    at = t + timedelta(minutes=40)
    order("NO-SESSION", customers[43], at, at + land)
    # a signup whose session lands 20 minutes late
    at = t + timedelta(minutes=60)
    w.add("signups", at + land, signup_id="SU-LATE", customer_id=customers[44], signed_up_at=at, plan="team",
          activated_at=None, seats=3, updated_at=at)
    w.add("web_sessions", at + timedelta(minutes=22), session_id="WS-SU-LATE", customer_id=customers[44],
          started_at=at - timedelta(minutes=3), ttp=f"ttp-{customers[44]}", ip="203.0.113.9",
          user_agent="Mozilla/5.0 Timeline", page_url="https://app.example.com/signup", signup_id="SU-LATE",
          pixel_event_id="px-SU-LATE")
    # a trial (complete) and a paid subscription whose subscription row lands 30 minutes late
    at = t + timedelta(minutes=65)
    w.add("app_events", at + land, app_event_id="AE-TRIAL", customer_id=customers[45], subscription_id="SUB-1",
          event_name="trial_started", occurred_at=at - timedelta(days=7), platform="ios", ip="198.51.100.4",
          user_agent="App/2.0")
    w.add("app_events", at + land, app_event_id="AE-SUB", customer_id=customers[45], subscription_id="SUB-1",
          event_name="subscription_started", occurred_at=at, platform="ios", ip="198.51.100.4",
          user_agent="App/2.0")
    w.add("subscriptions", at + timedelta(minutes=30), subscription_id="SUB-1", customer_id=customers[45],
          plan="monthly", trial_started_at=at - timedelta(days=7), subscribed_at=at, currency="USD", price=14.99,
          updated_at=at)
    # after the mapping rename (hour 9): goes out under the new name
    for i in range(3):
        at = start + timedelta(hours=9, minutes=20 + 10 * i)
        order(f"RENAMED-{i}", customers[46 + i], at, at + land)
        checkout(f"RENAMED-{i}", customers[46 + i], at, at + land + timedelta(minutes=10 * i))
    # a long run's stream of ordinary orders, each session 0-90 minutes late
    n = 0
    for hour in range(12, hours):
        for _ in range(_poisson(rng, late_orders_per_hour)):
            at = start + timedelta(hours=hour, minutes=rng.uniform(0, 60))
            customer = rng.choice(customers)
            order(f"STREAM-{n}", customer, at, at + land, net=round(rng.uniform(15, 400), 2))
            checkout(f"STREAM-{n}", customer, at, at + land + timedelta(minutes=rng.choice((0, 0, 0, 10, 40, 90))))
            n += 1
    return w


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    k, p, limit = 0, 1.0, pow(2.718281828459045, -mean)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def default_schedule(start: datetime) -> list[Build]:
    """Hourly around the late arrivals, the mapping rename and the salt change with a full
    refresh, then coarser."""
    hours = [*range(0, 7), 9, 10, 11, 26]
    builds = []
    for h in hours:
        builds.append(Build(
            at=start + timedelta(hours=h),
            full_refresh=h in (9, 11),  # the rename at 9, the salt change at 11
            purchase_event="Purchase" if h >= 9 else "CompletePayment",
            salt="timeline-salt-2" if h >= 11 else "timeline-salt-1",
        ))
    return builds


# -- the oracle -----------------------------------------------------------------------------------


def _latest(rows: Iterable[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """The row per `key` with the latest updated_at (identical copies are one row)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = out.get(row[key])
        if held is None or (row["updated_at"] or datetime.min) > (held["updated_at"] or datetime.min):
            out[row[key]] = row
    return out


def _latest_click(sessions: list[dict[str, Any]], customer: str | None, linked: str | None,
                  linked_key: str, converted_at: datetime) -> str | None:
    clicks = [
        s for s in sessions
        if s["ttclid"] and converted_at - CLICK_WINDOW <= s["started_at"] <= converted_at
        and ((customer is not None and s["customer_id"] == customer) or (linked and s[linked_key] == linked))
    ]
    if not clicks:
        return None
    return max(clicks, key=lambda s: (s["started_at"], s["session_id"]))["ttclid"]


def _conversions_at(world: World, build: Build) -> dict[str, dict[str, Any]]:
    """Every conversion that has landed by `build`, as the rules see it then."""
    at = build.at
    sessions = world.landed("web_sessions", at)
    out: dict[str, dict[str, Any]] = {}
    for order in _latest(world.landed("orders", at), "order_id").values():
        own = [s for s in sessions if s["order_id"] == order["order_id"]]
        pixel = max((s for s in own if s["pixel_event_id"]), key=lambda s: s["started_at"], default=None)
        out[f"order:{order['order_id']}"] = {
            "converted_at": order["ordered_at"], "complete": bool(own),
            "event": build.purchase_event,
            "event_id": pixel["pixel_event_id"] if pixel else f"purchase-{order['order_id']}",
            "ttclid": _latest_click(sessions, order["customer_id"], order["order_id"], "order_id", order["ordered_at"]),
            "observed_value": float(order["net_revenue"]) - float(order["refunded_amount"] or 0),
            "reason": ("not_completed" if order["status"] == "cancelled"
                       else "invalid_currency" if order["currency"] not in KNOWN_CURRENCIES else None),
        }
    for signup in _latest(world.landed("signups", at), "signup_id").values():
        own = [s for s in sessions if s["signup_id"] == signup["signup_id"]]
        pixel = max((s for s in own if s["pixel_event_id"]), key=lambda s: s["started_at"], default=None)
        out[f"signup:{signup['signup_id']}"] = {
            "converted_at": signup["signed_up_at"], "complete": bool(own), "event": "SubmitForm",
            "event_id": pixel["pixel_event_id"] if pixel else f"signup-{signup['signup_id']}",
            "ttclid": _latest_click(sessions, signup["customer_id"], signup["signup_id"], "signup_id",
                                    signup["signed_up_at"]),
            "observed_value": None, "reason": None,
        }
    subscriptions = _latest(world.landed("subscriptions", at), "subscription_id")
    for event in world.landed("app_events", at):
        paid = event["event_name"] == "subscription_started"
        sub = subscriptions.get(event["subscription_id"])
        out[f"app_event:{event['app_event_id']}"] = {
            "converted_at": event["occurred_at"], "complete": sub is not None or not paid,
            "event": "Subscribe" if paid else "StartTrial", "event_id": event["app_event_id"], "ttclid": None,
            "observed_value": float(sub["price"]) if paid and sub else None, "reason": None,
        }
    return out


def expected_outcomes(world: World, builds: list[Build]) -> dict[str, Outcome]:
    """Conversion id -> what TikTok should have received by the last build (or why not)."""
    outcomes: dict[str, Outcome] = {}
    for build in builds:
        for conversion_id, c in _conversions_at(world, build).items():
            outcome = outcomes.setdefault(conversion_id, Outcome("waiting", first_seen_at=build.at))
            if outcome.state == "sent":
                continue  # frozen
            converted_at = c["converted_at"]
            if converted_at < build.at - MAX_AGE:
                outcome.state, outcome.reason = "excluded", "event_too_old"
            elif converted_at > build.at + FUTURE_TOLERANCE:
                outcome.state, outcome.reason = "excluded", "event_in_future"
            elif c["reason"] == "not_completed":
                outcome.state, outcome.reason = "excluded", c["reason"]
            elif not c["complete"] and build.at < converted_at + SETTLE:
                outcome.state, outcome.reason, outcome.waited = "waiting", None, True
            elif c["reason"]:
                outcome.state, outcome.reason = "excluded", c["reason"]
            else:
                outcome.state, outcome.reason, outcome.sent_at = "sent", None, build.at
                outcome.event, outcome.event_id, outcome.ttclid = c["event"], c["event_id"], c["ttclid"]
                outcome.observed_value = c["observed_value"]
    return outcomes


# -- replaying it ---------------------------------------------------------------------------------


@dataclass
class Replay:
    """A warehouse, a copy of the project and a way to push; `run` replays a schedule."""

    workdir: Path
    emulator_url: str
    sender_env: dict[str, str]
    project: Path = field(init=False)
    warehouse: Path = field(init=False)
    _manifest: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.project = copy_project(self.workdir / "project")
        self.warehouse = self.workdir / "warehouse.duckdb"

    def load(self, world: World, at: datetime) -> None:
        """The source tables as they stand at `at`: every row that has landed, in landing order."""
        with duckdb.connect(str(self.warehouse)) as con:
            con.execute(f"create schema if not exists {SOURCE}")
            for table, columns in COLUMNS.items():
                con.execute(f"create or replace table {SOURCE}.{table} ("
                            + ", ".join(f"{c} {t}" for c, t in columns) + ")")
                rows = [[r[c] for c, _ in columns] for r in world.landed(table, at)]
                if rows:
                    con.executemany(f"insert into {SOURCE}.{table} values ({', '.join('?' for _ in columns)})", rows)

    def rename_purchase(self, event: str) -> None:
        mapping = self.project / "seeds" / "reference" / "tiktok_event_mapping.csv"
        with mapping.open(newline="") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            if row["business_model"] == "ecommerce" and row["canonical_event"] == "purchase":
                row["tiktok_event"] = event
        with mapping.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def dbt_build(self, build: Build) -> None:
        """`dbt build` of what feeds the push, with every data test (the gates), in this process:
        the project is parsed once and its manifest reused, so a build costs its own work (the
        per-build vars, as-of and salt, are read when the models compile). Unit tests run in the
        main suite."""
        from dbt.cli.main import dbtRunner

        os.environ.update(dbt_env(self.warehouse))
        common = ["--project-dir", str(self.project), "--quiet"]
        if self._manifest is None:
            parsed = dbtRunner().invoke(["parse", *common, "--vars", "{tiktok_load_demo_data: false}"])
            if not parsed.success:
                raise AssertionError(f"dbt parse failed: {parsed.exception}")
            self._manifest = parsed.result
        args = ["build", *common,
                "--select", "+tiktok_events_outbox", "+tiktok_events_waiting", "+tiktok_events_excluded",
                "resource_type:seed", "--exclude", "resource_type:unit_test",
                "--vars", f"{{tiktok_load_demo_data: false, tiktok_as_of: '{build.at:%Y-%m-%d %H:%M:%S}', "
                f"tiktok_experiment_salt: '{build.salt}'}}"]
        if build.full_refresh:
            args.append("--full-refresh")
        try:
            result = dbtRunner(manifest=self._manifest).invoke(args)
        finally:
            release_duckdb()
        if not result.success:
            failures = [f"{r.node.unique_id}: {r.status}: {r.message}" for r in getattr(result.result, "results", [])
                        if str(r.status) in ("error", "fail")]
            raise AssertionError(f"dbt build at {build.at} failed: {result.exception or ''}\n" + "\n".join(failures))

    def push(self) -> str:
        env = {**self.sender_env, "DBT_DUCKDB_PATH": str(self.warehouse), "TIKTOK_API_URL": self.emulator_url}
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "sender"), "push", "--json"],
            cwd=self.workdir, env=env, capture_output=True, text=True, check=False, timeout=300,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"sender push failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout

    def run(self, world: World, builds: list[Build]) -> None:
        mapping_event = "CompletePayment"
        for build in builds:
            if build.purchase_event != mapping_event:
                self.rename_purchase(build.purchase_event)
                mapping_event = build.purchase_event
            self.load(world, build.at)
            self.dbt_build(build)
            self.push()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()


# -- what TikTok received -------------------------------------------------------------------------


def received_by_conversion(world: World, events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The emulator's accepted events grouped by the conversion they stand for (order, signup or
    subscription id in properties.order_id, and the event family)."""
    app_events = {(e.values["subscription_id"], e.values["event_name"]): e.values["app_event_id"]
                  for e in world.rows if e.table == "app_events"}
    out: dict[str, list[dict[str, Any]]] = {}
    for received in events:
        payload = received["payload"]
        record = payload.get("properties", {}).get("order_id")
        event = payload["event"]
        if event in ("CompletePayment", "Purchase"):
            conversion_id = f"order:{record}"
        elif event == "SubmitForm":
            conversion_id = f"signup:{record}"
        else:
            name = "subscription_started" if event == "Subscribe" else "trial_started"
            conversion_id = f"app_event:{app_events[(record, name)]}"
        out.setdefault(conversion_id, []).append(received)
    return out


def differences(expected: dict[str, Outcome], received: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every way what TikTok received differs from the oracle: a conversion received that should
    not have been, more than once or under more than one key, or under another key, event name
    or click id than those of its send time."""
    out = [f"{cid}: received, but the oracle knows no such conversion" for cid in sorted(set(received) - set(expected))]
    for conversion_id, want in sorted(expected.items()):
        got = received.get(conversion_id, [])
        if want.state != "sent":
            if got:
                out.append(f"{conversion_id}: {want.state} ({want.reason}), but received {len(got)} time(s)")
            continue
        if len(got) != 1 or got[0]["receive_count"] != 1:
            keys = [(g["payload"]["event"], g["payload"]["event_id"], g["receive_count"]) for g in got]
            out.append(f"{conversion_id}: sent once expected, received {keys}")
            continue
        payload = got[0]["payload"]
        have = (payload["event"], payload["event_id"], payload.get("user", {}).get("ttclid"))
        if have != (want.event, want.event_id, want.ttclid):
            out.append(f"{conversion_id}: received {have}, expected {(want.event, want.event_id, want.ttclid)}")
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(sorted(values), n=100, method="inclusive")[int(q * 100) - 1]


def settle_figures(outcomes: dict[str, Outcome]) -> dict[str, float]:
    """How many sent conversions waited for a later build than the first that saw them, and the
    latency that added (minutes, p50 and p90 over those that waited)."""
    sent = [o for o in outcomes.values() if o.state == "sent"]
    waited = [(o.sent_at - o.first_seen_at).total_seconds() / 60 for o in sent if o.waited]  # type: ignore[operator]
    return {"sent": len(sent), "waited": len(waited),
            "added_p50_min": percentile(waited, 0.5), "added_p90_min": percentile(waited, 0.9)}


def start_of_replay(hours: int) -> datetime:
    """The replay ends at the last full hour, so the sender's real clock sees its events as fresh."""
    now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours)
