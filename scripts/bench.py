#!/usr/bin/env python3
"""The performance benchmark behind `make bench`: generate, build, rebuild, push, compare.

Usage::

    python scripts/bench.py --events 1000000            # the whole benchmark
    python scripts/bench.py --events 30000 --no-peers   # a quick run, without drt
    python scripts/bench.py --pending-only 10000000     # sender memory at 10M pending events
    python scripts/bench.py --history 10000000          # the push over 10M receipts of history

In a fresh directory (``--dir``, default ``target/bench``):

1. ``scripts/bench_generate.py`` fills the seven source tables so that about ``--events``
   conversions reach the outbox;
2. a full ``dbt build`` of what a plain ``dbt build`` selects (models, seeds and data tests that
   feed the outbox; the audit, the monitors and the unit tests excluded, demo seeds off:
   ``--vars '{tiktok_load_demo_data: false}'``), timed;
3. ``--append-share`` (1 %) new conversions are appended and ``dbt build`` runs again with the
   same selection: the incremental rebuild (the outbox appends; the other models rebuild as
   their materialisation says; every data test runs again), timed;
4. The emulator (``python -m tiktok_emulator``) starts in its own process on 127.0.0.1 and ``sender push`` sends the
   whole outbox to it: wall time, events/s and the peak RSS of the sender process (its own
   rusage, read with ``wait4`` by a small launcher process, see ``LAUNCHER``; the emulator's
   memory and CPU are not in it). The emulator runs in lean mode (``--lean``: it validates the
   envelope and first event of each request and keeps only dedup keys), so that its own CPU
   cost per event does not cap the figure;
5. the baseline: one event per request, as several hosted connectors send, by a small httpx
   client below (keep-alive, ``--concurrency`` requests in flight, like the sender's default),
   on the first ``--baseline-sample`` events, against the same emulator (reset first, so it
   does the same dedup work); its events/s is the sample's;
6. the peer, unless ``--no-peers``: drt (``drt-core``, installed in its own virtualenv
   ``--bench-venv``, default ``.venv-bench``: ``make setup-bench``) sends the whole outbox to
   the same emulator in two modes, its REST API destination's batch template building each
   event, and each event's JSON built in the model's SQL (``scripts/bench_peers.py``). The
   emulator is reset before each; the events it accepted are recorded, events/s = accepted /
   wall time of the ``drt run`` process, peak RSS measured as the sender's;
7. ``dbt build --selector audit``: the audit models over the receipts of that push (not part of
   the build that feeds the push), timed;
8. a table on stdout and ``bench/results.json``.

``--pending-only N`` measures the sender alone at N pending events: it copies the outbox of a
finished run (``--dir``) into a new warehouse, replicated with fresh ``event_id`` and
``conversion_id`` values until it holds N rows (synthetic rows with the outbox's columns and
real values, labelled so in the results), then runs ``sender push --dry-run`` (reads, builds and
validates every payload, sends nothing) and, with ``--pending-push``, a real push.

``--history N`` measures the push of a finished run's outbox (``--dir``) as new work on top of
N delivery receipts, next to the same push over no history (``scripts/bench_history.py``). The
history is synthetic: N outbox rows replicated from that outbox with fresh ids (a lower
``outbox_seq`` than the new rows, where the outbox has that column), each with a ``delivered``
receipt written in SQL. The runs table is left alone, so no completed run covers the history:
the first push over it has no watermark from an earlier run and may read the whole history
once. Then ``--append-share`` of new rows is appended (fresh ids, a higher ``outbox_seq``) and
pushed again: that second push is the steady-state cost. Both pushes run on both warehouses.
Results go to ``bench/results_history.json``.

Both the sender and the emulator run on this machine's cores, so the emulator's speed bounds
what the push can show: the results record the emulator's CPU time per event next to the push.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import bench_history
import bench_peers
import duckdb
import httpx
import orjson

from tiktok_sender.api.contract import MAX_BATCH_SIZE
from tiktok_sender.settings import DEFAULT_DUCKDB_MEMORY_LIMIT

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN = "bench-access-token"  # the emulator's token; never a real one
SCHEMA = "tiktok"  # the target schema of profiles.yml
OUTBOX = f"{SCHEMA}.tiktok_events_outbox"
DBT_VARS = ["--vars", "{tiktok_load_demo_data: false}"]
# What a plain `dbt build` selects (selectors.yml: everything but the audit and the monitors),
# without the unit tests, whose cost does not depend on the data.
DBT_SELECTION = [*DBT_VARS, "--exclude", "resource_type:unit_test", "tag:monitor", "tag:audit"]
# The audit after the push (`make audit`).
DBT_AUDIT_SELECTION = [*DBT_VARS, "--selector", "audit"]
EVENT_SOURCE_IDS = {
    "TIKTOK_PIXEL_CODE": "CBENCHPIXEL0000000001",
    "TIKTOK_APP_ID": "7000000000000000001",
    "TIKTOK_OFFLINE_EVENT_SET_ID": "7100000000000000001",
    "TIKTOK_CRM_EVENT_SET_ID": "7200000000000000001",
}


@dataclass
class Measured:
    """One child process: wall seconds, its own peak RSS, CPU seconds, exit code, output."""

    seconds: float
    peak_rss_mb: float
    cpu_s: float
    returncode: int
    stdout: str = field(repr=False)


# Runs a command and reports its rusage. Linux keeps a process's peak RSS (ru_maxrss) across
# exec, so a command started straight from this process would report at least this process's
# own peak (several hundred MB after replicating an outbox). This small launcher starts the
# command from a fresh, small process and reads the command's own rusage with wait4.
LAUNCHER = """
import json, os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as f:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss,
               "cpu_s": usage.ru_utime + usage.ru_stime}, f)
"""


def run_measured(cmd: Sequence[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> Measured:
    """Run `cmd` in `cwd`, stderr to `log`; its rusage is its own (see LAUNCHER)."""
    usage_file = log.with_suffix(".rusage.json")
    started = time.perf_counter()
    with open(log, "ab") as err:
        proc = subprocess.run([sys.executable, "-c", LAUNCHER, str(usage_file), *cmd], cwd=cwd,
                              env=env, stdout=subprocess.PIPE, stderr=err, check=False)
    seconds = time.perf_counter() - started
    usage = json.loads(usage_file.read_text()) if usage_file.exists() else {}
    return Measured(seconds, usage.get("maxrss_kb", 0) / 1024, usage.get("cpu_s", 0.0),
                    usage.get("exit", proc.returncode), proc.stdout.decode("utf-8", "replace"))


def checked(step: str, result: Measured, log: Path) -> Measured:
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else ""
        raise SystemExit(f"bench: {step} failed (exit {result.returncode}); see {log}\n"
                         f"{result.stdout[-3000:]}\n{tail}")
    return result


def bench_env(db: Path, work: Path) -> dict[str, str]:
    env = {**os.environ, **EVENT_SOURCE_IDS}
    env.update({
        "DBT_DUCKDB_PATH": str(db), "DBT_PROFILES_DIR": str(ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_TARGET_PATH": str(work / "dbt_target"),
        "DBT_LOG_PATH": str(work / "logs"), "TIKTOK_ACCESS_TOKEN": TOKEN,
    })
    env.pop("TIKTOK_API_URL", None)
    return env


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------


def generate(work: Path, db: Path, events: int, as_of: str, env: dict[str, str]) -> Measured:
    cmd = [sys.executable, "scripts/bench_generate.py", "--events", str(events), "--out-db", str(db),
           "--as-of", as_of]
    return checked("generate", run_measured(cmd, env, work / "generate.log"), work / "generate.log")


def append(work: Path, db: Path, share: float, as_of: str, env: dict[str, str]) -> Measured:
    cmd = [sys.executable, "scripts/bench_generate.py", "--out-db", str(db), "--append-share", str(share),
           "--as-of", as_of]
    return checked("append", run_measured(cmd, env, work / "generate.log"), work / "generate.log")


def dbt_build(work: Path, env: dict[str, str], name: str,
              selection: Sequence[str] = DBT_SELECTION) -> tuple[Measured, list[dict[str, Any]]]:
    log = work / f"{name}.log"
    cmd = [str(BIN / "dbt"), "build", *selection, "--project-dir", str(ROOT)]
    result = checked(name, run_measured(cmd, env, log), log)
    log.write_text(result.stdout)
    run_results = work / "dbt_target" / "run_results.json"
    shutil.copy(run_results, work / f"{name}_run_results.json")
    return result, node_timings(run_results)


def node_timings(path: Path) -> list[dict[str, Any]]:
    """Per-node execution time of a dbt run, slowest first."""
    results = json.loads(path.read_text())["results"]
    rows = [{"node": r["unique_id"], "seconds": round(float(r["execution_time"]), 2),
             "status": r["status"]} for r in results]
    return sorted(rows, key=lambda r: -r["seconds"])


@contextmanager
def emulator(work: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The emulator (`python -m tiktok_emulator`) in its own process on a free loopback port; stopped on exit."""
    log = open(work / "emulator.log", "ab")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([sys.executable, "-m", "tiktok_emulator", "--port", "0", "--token", TOKEN, "--lean"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = next((w for w in line.split() if w.startswith("http://")), None)
        if url is None:
            raise SystemExit(f"bench: the emulator did not start: {line!r}")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def admin(url: str, route: str, method: str = "GET") -> dict[str, Any]:
    base = url.split("/open_api/")[0]
    request = urllib.request.Request(f"{base}/_emulator/{route}", method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
        data: dict[str, Any] = json.load(response)
    return data


def push(work: Path, env: dict[str, str], url: str, extra: Sequence[str] = (), name: str = "push") -> Measured:
    cmd = [str(BIN / "sender"), "push", "--json", "--api-url", url, *extra]
    log = work / f"{name}.log"
    result = checked(name, run_measured(cmd, env, log), log)
    (work / f"{name}_summary.json").write_text(result.stdout)
    return result


def outbox_count(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(f"select count(*) from {OUTBOX}").fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------------------------
# The baseline: one event per request
# --------------------------------------------------------------------------------------------


def sample_events(db: Path, limit: int) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """The first `limit` outbox events as (event source, event) pairs, oldest first."""
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute(f"""select event_source, event_source_id, event, event_time, event_id,
                email_sha256, phone_sha256, external_id_sha256, ttclid, ttp, ip, user_agent,
                cast(value as double), currency, order_id, page_url
            from {OUTBOX} order by event_time, event_id limit ?""", [limit])
        rows = cursor.fetchall()
    return [event_of(row) for row in rows]


def event_of(row: tuple[Any, ...]) -> tuple[dict[str, str], dict[str, Any]]:
    (source, source_id, event, event_time, event_id, email, phone, external_id, ttclid, ttp, ip,
     user_agent, value, currency, order_id, page_url) = row
    user = {"email": email, "phone": phone, "external_id": external_id, "ttclid": ttclid,
            "ttp": ttp, "ip": ip, "user_agent": user_agent}
    properties = {"value": value, "currency": currency, "order_id": order_id}
    data: dict[str, Any] = {"event": event, "event_time": int(event_time), "event_id": str(event_id)}
    for key, part in (("user", user), ("properties", properties), ("page", {"url": page_url})):
        kept = {k: v for k, v in part.items() if v is not None and v != ""}
        if kept:
            data[key] = kept
    return {"event_source": source, "event_source_id": source_id}, data


async def send_one_by_one(url: str, events: list[tuple[dict[str, str], dict[str, Any]]],
                          concurrency: int) -> tuple[float, int]:
    """POST every event alone, `concurrency` requests in flight on keep-alive connections;
    returns (seconds, events acknowledged with code 0)."""
    queue: asyncio.Queue[tuple[dict[str, str], dict[str, Any]]] = asyncio.Queue()
    for item in events:
        queue.put_nowait(item)
    delivered = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Access-Token": TOKEN, "Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:

        async def worker() -> None:
            nonlocal delivered
            while not queue.empty():
                source, data = queue.get_nowait()
                body = json.dumps({**source, "data": [data]}).encode()
                response = await client.post(url, content=body)
                if response.status_code == 200 and response.json().get("code") == 0:
                    delivered += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, delivered


def baseline(db: Path, url: str, sample: int, concurrency: int) -> dict[str, Any]:
    events = sample_events(db, sample)
    admin(url, "reset", "POST")
    seconds, delivered = asyncio.run(send_one_by_one(url, events, concurrency))
    return {"baseline_sample": len(events), "baseline_delivered": delivered,
            "baseline_s": round(seconds, 2), "baseline_events_per_s": round(len(events) / seconds, 1)}


# --------------------------------------------------------------------------------------------
# The peer: drt, in its own virtualenv (scripts/bench_peers.py)
# --------------------------------------------------------------------------------------------


def drt_executable(venv: Path) -> Path:
    """drt in `venv`; exits with what to run when it is not installed there."""
    drt = venv.resolve() / "bin" / "drt"  # run from drt's project directory
    if not drt.exists() or bench_peers.drt_version(venv) is None:
        raise SystemExit(f"bench: drt is not installed in {venv}: run `make setup-bench`"
                         " (requirements-bench.txt), or pass --no-peers")
    return drt


def event_sources(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(f"select distinct event_source, event_source_id from {OUTBOX} order by all").fetchall()
    return [(str(source), str(source_id)) for source, source_id in rows]


def run_peers(work: Path, db: Path, env: dict[str, str], url: str, emulator_pid: int, venv: Path,
              concurrency: int) -> list[dict[str, Any]]:
    """drt in each of its modes, on the whole outbox, to the emulator (reset before each)."""
    drt = drt_executable(venv)
    sources = event_sources(db)
    project, home = work / "drt", work / "drt_home"
    bench_peers.write_project(project, home, db, OUTBOX, url, sources, MAX_BATCH_SIZE)
    threads = bench_peers.threads_for(sources, concurrency)
    events = outbox_count(db)
    peers = []
    for mode in bench_peers.MODES:
        step(f"peer: drt ({mode}), {events:,} events, {len(sources)} syncs on {threads} threads")
        admin(url, "reset", "POST")
        log = work / f"drt_{mode}.log"
        emulator_cpu = process_cpu_s(emulator_pid)
        result = run_measured(bench_peers.drt_command(drt, mode, threads), bench_peers.drt_env(env, home), log,
                              cwd=project)
        emulator_cpu = process_cpu_s(emulator_pid) - emulator_cpu
        stats = admin(url, "stats")
        accepted = int(stats["events_accepted"])
        peer: dict[str, Any] = {
            "name": "drt", "mode": mode, "version": bench_peers.drt_version(venv), "events": events,
            "accepted": accepted, "events_per_s": round(accepted / result.seconds, 1),
            "peak_rss_mb": round(result.peak_rss_mb, 1), "seconds": round(result.seconds, 2),
            "cpu_s": round(result.cpu_s, 2), "exit_code": result.returncode, "syncs": len(sources),
            "threads": threads, "batch_size": MAX_BATCH_SIZE,
            "chunk_size": MAX_BATCH_SIZE * bench_peers.REQUESTS_PER_CHUNK, "requests": stats["track_requests"],
            "emulator_codes": stats["codes"], "emulator_cpu_s": round(emulator_cpu, 2),
        }
        if result.returncode != 0 or accepted != events:
            tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
            peer["problem"] = (f"drt exited {result.returncode}; the emulator accepted {accepted:,} of"
                               f" {events:,} events; see {log}")
            peer["log_tail"] = tail
            print(f"  {peer['problem']}", flush=True)
        peers.append(peer)
    return peers


def compare_peers(results: dict[str, Any]) -> None:
    """The sender's events/s and peak RSS as multiples of each peer's."""
    for peer in results.get("peers", []):
        peer["sender_events_per_s_ratio"] = (
            round(results["push_events_per_s"] / peer["events_per_s"], 2) if peer["events_per_s"] else None)
        peer["sender_peak_rss_ratio"] = (
            round(results["push_peak_rss_mb"] / peer["peak_rss_mb"], 2) if peer["peak_rss_mb"] else None)


# --------------------------------------------------------------------------------------------
# Machine, versions, results
# --------------------------------------------------------------------------------------------


def duckdb_memory_limit() -> str:
    """The sender's DuckDB memory limit in these pushes (TIKTOK_DUCKDB_MEMORY_LIMIT or its default)."""
    return os.environ.get("TIKTOK_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT)


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    return {"nproc": os.cpu_count(), "memory_gb": round(total_kb / 1024 / 1024, 1),
            "cpu": cpu_model(), "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("duckdb", "dbt-core", "dbt-duckdb", "httpx", "pyarrow", "orjson", "tiktok-outbox-sender"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    found["git_commit"] = git.stdout.strip()
    return found


def summary_of(measured: Measured) -> dict[str, Any]:
    try:
        data: dict[str, Any] = orjson.loads(measured.stdout)
    except orjson.JSONDecodeError:
        return {}
    return data


def count_of(summary: dict[str, Any], *keys: str) -> int | None:
    """The first of `keys` found at the top of the push summary or under `counts`."""
    for where in (summary, summary.get("counts") or {}):
        for key in keys:
            if isinstance(where.get(key), int):
                return int(where[key])
    return None


def print_table(results: dict[str, Any]) -> None:
    rows = [
        ("events in the outbox", f"{results['events']:,}"),
        ("generate", f"{results['generate_s']:.1f} s"),
        ("dbt build (full)", f"{results['dbt_build_s']:.1f} s"),
        ("dbt build after +1 % (incremental)",
         f"{results['dbt_incremental_s']:.1f} s ({results['incremental_share_of_full']:.0%} of full,"
         f" +{results['appended_events']:,} events)"),
        ("sender push", f"{results['push_s']:.1f} s, {results['push_events_per_s']:,.0f} events/s,"
                        f" peak RSS {results['push_peak_rss_mb']:.0f} MB"),
        ("baseline (1 event/request)", f"{results['baseline_events_per_s']:,.0f} events/s"
                                       f" (sample of {results['baseline_sample']:,})"),
        ("push / baseline", f"{results['push_vs_baseline']:.1f}x"),
        *((f"drt {p['version']} ({p['mode']})",
           f"{p['seconds']:.1f} s, {p['events_per_s']:,.0f} events/s, peak RSS {p['peak_rss_mb']:.0f} MB,"
           f" {p['accepted']:,} of {p['events']:,} accepted; sender {p['sender_events_per_s_ratio']}x"
           f" the events/s, {p['sender_peak_rss_ratio']}x the RSS") for p in results.get("peers", [])),
        ("emulator CPU per pushed event", f"{results['emulator_cpu_us_per_event']:.1f} us"),
        ("dbt build --selector audit", f"{results['dbt_audit_s']:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def write_results(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    print(f"results -> {path}")


# --------------------------------------------------------------------------------------------
# The two modes
# --------------------------------------------------------------------------------------------


def fresh_dir(work: Path) -> Path:
    if work.exists():
        shutil.rmtree(work)
    (work / "logs").mkdir(parents=True)
    return work / "bench.duckdb"


def step(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", flush=True)


def full_run(args: argparse.Namespace) -> dict[str, Any]:
    if not args.no_peers:
        drt_executable(args.bench_venv)  # before the long part, not after it
    work = args.dir.resolve()
    db = fresh_dir(work)
    env = bench_env(db, work)
    started_at = datetime.now(UTC)
    results: dict[str, Any] = {"events_requested": args.events, "started_at": started_at.isoformat(),
                               "machine": machine(), "versions": versions(),
                               "duckdb_memory_limit": duckdb_memory_limit()}
    as_of = started_at.replace(microsecond=0, tzinfo=None).isoformat()
    step(f"generating about {args.events:,} events")
    results["generate_s"] = round(generate(work, db, args.events, as_of, env).seconds, 2)

    step("dbt build (full)")
    built, timings = dbt_build(work, env, "dbt_build")
    results["dbt_build_s"] = round(built.seconds, 2)
    results["dbt_build_slowest_nodes"] = timings[:10]
    before = outbox_count(db)

    step(f"appending {args.append_share:.0%} new events, dbt build again")
    append_as_of = datetime.now(UTC).replace(microsecond=0, tzinfo=None).isoformat()
    results["append_s"] = round(append(work, db, args.append_share, append_as_of, env).seconds, 2)
    rebuilt, timings = dbt_build(work, env, "dbt_incremental")
    results["dbt_incremental_s"] = round(rebuilt.seconds, 2)
    results["dbt_incremental_slowest_nodes"] = timings[:10]
    results["events"] = outbox_count(db)
    results["appended_events"] = results["events"] - before
    results["incremental_share_of_full"] = round(rebuilt.seconds / built.seconds, 3)

    with emulator(work, env) as (url, emu):
        step(f"sender push of {results['events']:,} events to the emulator")
        emulator_cpu = process_cpu_s(emu.pid)
        pushed = push(work, env, url)
        emulator_cpu = process_cpu_s(emu.pid) - emulator_cpu
        summary = summary_of(pushed)
        delivered = count_of(summary, "delivered") or 0
        results.update(push_s=round(pushed.seconds, 2), push_delivered=delivered,
                       push_events_per_s=round(delivered / pushed.seconds, 1),
                       push_peak_rss_mb=round(pushed.peak_rss_mb, 1), push_cpu_s=round(pushed.cpu_s, 2),
                       push_summary=summary, emulator_cpu_s=round(emulator_cpu, 2),
                       emulator_cpu_us_per_event=round(emulator_cpu / max(delivered, 1) * 1e6, 2),
                       emulator_stats=admin(url, "stats"))
        step(f"baseline: one event per request, {args.baseline_sample:,} events")
        results.update(baseline(db, url, args.baseline_sample, args.concurrency))
        if not args.no_peers:
            results["peers"] = run_peers(work, db, env, url, emu.pid, args.bench_venv, args.concurrency)
            compare_peers(results)
    results["push_vs_baseline"] = round(results["push_events_per_s"] / results["baseline_events_per_s"], 1)

    step("dbt build --selector audit (the audit of the push)")
    audited, timings = dbt_build(work, env, "dbt_audit", DBT_AUDIT_SELECTION)
    results["dbt_audit_s"] = round(audited.seconds, 2)
    results["dbt_audit_slowest_nodes"] = timings[:5]
    results["finished_at"] = datetime.now(UTC).isoformat()
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["notes"] = NOTES
    return results


NOTES = {
    "dbt": "dbt build --vars '{tiktok_load_demo_data: false}' --exclude resource_type:unit_test tag:monitor"
           " tag:audit; the incremental rebuild is the same command after the append (incremental models"
           " take the new conversions, data tests rerun); the audit is timed apart, after the push",
    "push": "sender push --json to the emulator (own process) on 127.0.0.1; peak RSS of the sender"
            " process from wait4; events/s = delivered / wall time of the process (start-up included)",
    "baseline": "httpx.AsyncClient, one event per POST, keep-alive, same concurrency as the sender's"
                " default, stdlib json; emulator reset before it",
    "peers": "drt run (drt-core in .venv-bench): one sync per event source (DuckDB source, REST API"
             " destination, body_mode batch, max_records_per_request = the sender's batch size, in"
             " sync.batch_size chunks of ten requests, rate limit off),"
             " --threads = syncs, at most --concurrency; every outbox row sent (no local checks, no"
             " receipts); batch_template: each event built by the Jinja batch template; sql_json: each"
             " event's JSON built in the model's SQL (DuckDB JSON functions), the template joins them."
             " Emulator reset before each; accepted = its events_accepted; events/s = accepted / wall"
             " time of the drt process (start-up included); peak RSS from wait4 as for the sender;"
             " sender_*_ratio = the sender's figure / the peer's",
}


def pending_only(args: argparse.Namespace) -> dict[str, Any]:
    """Sender memory and speed at `args.pending_only` pending events, from a replicated outbox."""
    source = (args.dir / "bench.duckdb").resolve()
    if not source.exists():
        raise SystemExit(f"bench: {source} not found; run the benchmark first (make bench)")
    work = (args.dir / "pending").resolve()
    db = fresh_dir(work)
    env = bench_env(db, work)
    step(f"replicating the outbox of {source} to {args.pending_only:,} rows")
    started = time.perf_counter()
    replicate_outbox(source, db, args.pending_only)
    results: dict[str, Any] = {
        "pending_events": args.pending_only, "replicate_s": round(time.perf_counter() - started, 2),
        "rows": "synthetic: the outbox of a benchmark run replicated with fresh event_id/conversion_id",
        "started_at": datetime.now(UTC).isoformat(), "machine": machine(), "versions": versions(),
    }
    step("sender push --dry-run")
    dry = push(work, env, "http://127.0.0.1:9/open_api/v1.3/event/track/", ["--dry-run"], "dry_run")
    results.update(dry_run_s=round(dry.seconds, 2), dry_run_peak_rss_mb=round(dry.peak_rss_mb, 1),
                   dry_run_events_per_s=round(args.pending_only / dry.seconds, 1), dry_run_summary=summary_of(dry))
    if args.pending_push:
        with emulator(work, env) as (url, _):
            step("sender push (real) to the emulator")
            pushed = push(work, env, url)
        delivered = count_of(summary_of(pushed), "delivered") or 0
        results.update(push_s=round(pushed.seconds, 2), push_peak_rss_mb=round(pushed.peak_rss_mb, 1),
                       push_events_per_s=round(delivered / pushed.seconds, 1), push_delivered=delivered)
    results["finished_at"] = datetime.now(UTC).isoformat()
    return results


def history_run(args: argparse.Namespace) -> dict[str, Any]:
    """The push of a finished run's outbox over `args.history` synthetic receipts and over none,
    then of `args.append_share` more rows (scripts/bench_history.py)."""
    source = (args.dir / "bench.duckdb").resolve()
    if not source.exists():
        raise SystemExit(f"bench: {source} not found; run the benchmark first (make bench)")
    work = (args.dir / "history").resolve()
    fresh_dir(work)
    results: dict[str, Any] = {
        "history_receipts": args.history,
        "rows": "synthetic: the history is the outbox of a benchmark run replicated with fresh event_id/"
                "conversion_id and older event times, one delivered receipt each and the run that delivered"
                " them, written in SQL",
        "duckdb_memory_limit": duckdb_memory_limit(),
        "started_at": datetime.now(UTC).isoformat(), "machine": machine(), "versions": versions(),
        "notes": HISTORY_NOTES, "history": {},
    }
    with emulator(work, bench_env(work / "empty.duckdb", work)) as (url, _):
        for name, size in (("empty", 0), ("with_history", args.history)):
            db = work / f"{name}.duckdb"
            env = bench_env(db, work)
            step(f"warehouse {name}: the outbox of {source}" + (f" over {size:,} receipts" if size else ""))
            started = time.perf_counter()
            built = bench_history.build(source, db, OUTBOX, size)
            appended = max(1, round(int(built["new_rows"]) * args.append_share))
            section: dict[str, Any] = {**built, "build_s": round(time.perf_counter() - started, 2)}
            step(f"{name}: first push ({built['new_rows']:,} new events)")
            section["first_push"] = measured_push(work, env, url, f"{name}_first_push")
            bench_history.append_new(db, source, OUTBOX, appended)
            step(f"{name}: second push ({appended:,} new events)")
            section["second_push"] = measured_push(work, env, url, f"{name}_second_push")
            results["history"][name] = section
    empty, history = results["history"]["empty"], results["history"]["with_history"]
    for push_name in ("first_push", "second_push"):
        before, after = empty[push_name], history[push_name]
        after["vs_empty"] = {key: round(after[key] / before[key], 2) if before[key] else None
                             for key in ("seconds", "peak_rss_mb")}
    results["finished_at"] = datetime.now(UTC).isoformat()
    return results


def measured_push(work: Path, env: dict[str, str], url: str, name: str) -> dict[str, Any]:
    """`sender push` to the emulator (reset first); a failed push is recorded, not fatal."""
    admin(url, "reset", "POST")
    cmd = [str(BIN / "sender"), "push", "--json", "--api-url", url]
    log = work / f"{name}.log"
    result = run_measured(cmd, env, log)
    (work / f"{name}_summary.json").write_text(result.stdout)
    summary = summary_of(result)
    delivered = count_of(summary, "delivered") or 0
    pushed: dict[str, Any] = {
        "seconds": round(result.seconds, 2), "pending": count_of(summary, "pending"), "delivered": delivered,
        "events_per_s": round(delivered / result.seconds, 1), "peak_rss_mb": round(result.peak_rss_mb, 1),
        "cpu_s": round(result.cpu_s, 2), "exit_code": result.returncode, "outcome": summary.get("outcome"),
    }
    if result.returncode != 0:
        pushed["message"] = summary.get("message") or "\n".join(
            log.read_text(errors="replace").splitlines()[-5:])
        print(f"  push failed (exit {result.returncode}): {pushed['message']}", flush=True)
    return pushed


HISTORY_NOTES = {
    "empty": "the outbox of the benchmark run, no receipts: first push = every event, second push ="
             " --append-share new events (copied rows, fresh ids, higher outbox_seq where it exists)",
    "with_history": "the same outbox rows plus N history rows (lower outbox_seq), each with a delivered"
                    " receipt, moved back 30 days per copy of the outbox (older than the new work, as"
                    " months of deliveries are), and the complete run that delivered them in the runs"
                    " table with its mark: the first push is the steady-state push of the new work over"
                    " that history",
    "push": "sender push --json to tiktok-emulator --lean (reset before each push); events/s = delivered"
            " / wall time of the process; peak RSS of the sender process from wait4; vs_empty = this"
            " push's figure / the same push's over no history",
}


def replicate_outbox(source: Path, db: Path, rows: int) -> None:
    with duckdb.connect(str(db)) as con:
        per_copy = bench_history.attach_source(con, source, OUTBOX)
        copies = -(-rows // per_copy)
        con.execute(f"create schema {SCHEMA}")
        con.execute(f"""create table {OUTBOX} as
            select * replace (case when copy = 0 then event_id else event_id || '-r' || copy end as event_id,
                              case when copy = 0 then conversion_id else conversion_id || '-r' || copy end
                                  as conversion_id)
            from src.{OUTBOX}, range({copies}) as t(copy)
            limit {rows}""")
        con.execute("detach src")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="outbox size to generate")
    parser.add_argument("--dir", type=Path, default=ROOT / "target" / "bench", help="working directory (wiped)")
    parser.add_argument("--results", type=Path,
                        help="default: bench/results.json (with --pending-only: bench/results_pending.json,"
                             " with --history: bench/results_history.json)")
    parser.add_argument("--append-share", type=float, default=0.01)
    parser.add_argument("--baseline-sample", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=4,
                        help="baseline requests in flight; the most drt threads")
    parser.add_argument("--no-peers", action="store_true", help="skip the drt peer (a quicker run)")
    parser.add_argument("--bench-venv", type=Path, default=ROOT / ".venv-bench",
                        help="virtualenv with drt-core (make setup-bench)")
    parser.add_argument("--pending-only", type=int, metavar="N", help="only measure the sender at N pending events")
    parser.add_argument("--pending-push", action="store_true", help="with --pending-only: also push for real")
    parser.add_argument("--history", type=int, metavar="N",
                        help="only measure the push of the outbox of --dir over N synthetic receipts")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.history:
        results = history_run(args)
        print(json.dumps(results["history"], indent=2))
        write_results(results, args.results or ROOT / "bench" / "results_history.json")
        return 0
    if args.pending_only:
        results = pending_only(args)
        print(json.dumps({k: v for k, v in results.items() if not k.endswith("summary")}, indent=2))
        write_results(results, args.results or ROOT / "bench" / "results_pending.json")
        return 0
    results = full_run(args)
    print_table(results)
    write_results(results, args.results or ROOT / "bench" / "results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
