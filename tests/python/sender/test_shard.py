"""Sharded sending: `sender push --shard K/N` sends only its share; N shards send everything once.

On DuckDB the delivery lease is the file's write lock, so shard processes started together run
one after the other (each waits with --lock-timeout); on PostgreSQL they would run in parallel.
Either way the shards must partition the outbox: union complete, intersection empty."""

from __future__ import annotations

import subprocess
from collections import Counter

import orjson
import pytest
from sender_harness import SENDER, Project, Result

from tiktok_emulator import EmulatorThread
from tiktok_sender.errors import ConfigError
from tiktok_sender.shard import Shard, shard_of

PUSH = ("push", "--json", "--batch-size", "50", "--concurrency", "2", "--lock-timeout", "60")


def test_shard_of_is_the_documented_hash() -> None:
    # sha256("abc") starts with ba7816bf = 3128432319
    assert [shard_of("abc", n) for n in (1, 2, 3, 7)] == [1, 2, 3128432319 % 3 + 1, 3128432319 % 7 + 1]
    assert shard_of(None, 5) == shard_of("", 5)
    assert Shard.parse(" 2/3 ") == Shard(2, 3) and str(Shard(2, 3)) == "2/3"
    assert Shard(1, 3).contains("abc") is (shard_of("abc", 3) == 1)


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "-1/3", "1/3/5", ""])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        Shard.parse(text)


@pytest.mark.parametrize("text", ["0/3", "4/3", "x"])
def test_a_bad_shard_is_a_usage_error(project: Project, text: str, emulator: EmulatorThread) -> None:
    result = project.sender("push", "--shard", text)
    assert result.returncode == 2 and "--shard" in result.stderr
    assert emulator.stats()["requests"] == 0


def test_three_concurrent_shards_send_everything_exactly_once(
    project: Project, emulator: EmulatorThread
) -> None:
    project.outbox.add(400, start=200)  # 600 events
    emulator.set_faults("latency_ms=20")  # each run lasts long enough for the others to wait
    procs = [
        subprocess.Popen([str(SENDER), *PUSH, "--shard", f"{k}/3"], cwd=project.root,
                         env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in (1, 2, 3)
    ]
    results = [Result(p.wait(timeout=90), p.stdout.read(), p.stderr.read())  # type: ignore[union-attr]
               for p in procs]
    for proc in procs:
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]

    outbox_ids = {row[0] for row in project.outbox.execute(
        "select event_id from tiktok.tiktok_events_outbox")}
    assert len(outbox_ids) == 600
    accepted = Counter(e["payload"]["event_id"] for e in emulator.events())
    assert set(accepted) == outbox_ids  # the union is complete
    assert set(accepted.values()) == {1}  # and no event was sent twice

    per_shard: dict[str, set[str]] = {}
    runs = {r["run_id"]: r for r in project.outbox.runs()}
    for receipt in project.outbox.receipts("status = 'delivered'"):
        per_shard.setdefault(runs[receipt["run_id"]]["shard"], set()).add(receipt["event_id"])
    assert sorted(per_shard) == ["1/3", "2/3", "3/3"]  # the run row records its shard
    shards = list(per_shard.values())
    assert sum(len(s) for s in shards) == 600 and set().union(*shards) == outbox_ids
    assert all(not (a & b) for i, a in enumerate(shards) for b in shards[i + 1:])
    for name, ids in per_shard.items():  # each run sent exactly the documented hash's share
        k = int(name.split("/")[0])
        assert ids == {e for e in outbox_ids if shard_of(e, 3) == k}
    summaries = [orjson.loads(r.stdout) for r in results]
    assert sorted(s["pending"] for s in summaries) == sorted(len(s) for s in shards)
    assert all(orjson.loads(r["settings"])["shard"] == r["shard"] for r in runs.values())
