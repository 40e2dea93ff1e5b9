"""Sharded sending: `sender push --shard K/N` sends only the events of shard K of N.

An event's shard is `int(sha256(event_id)[:8], 16) % N + 1`: the first 8 hex digits of the
SHA-256 of its `event_id` (UTF-8; a null id counts as the empty string) read as an unsigned
32-bit integer, modulo N, plus one. K is 1-based (1..N). The hash depends on the event alone, so
N workers given 1/N .. N/N together cover every event exactly once, whatever order they run in
and whatever each one saw before. The warehouse evaluates it in the pending query (each worker
reads only its share); `shard_of` is the same function in Python, for checks and tests.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tiktok_sender.errors import ConfigError

MAX_SHARDS = 4096
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # K, 1-based
    count: int  # N

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ConfigError(f"--shard K/N: N must be 1..{MAX_SHARDS}, got {self.count}")
        if not 1 <= self.index <= self.count:
            raise ConfigError(f"--shard K/N: K must be 1..N (1-based), got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SPEC.fullmatch(text)
        if match is None:
            raise ConfigError(f"--shard must look like K/N with 1 <= K <= N (e.g. 2/3), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def contains(self, event_id: str | None) -> bool:
        return shard_of(event_id, self.count) == self.index


def shard_of(event_id: str | None, count: int) -> int:
    """The 1-based shard of `event_id` among `count` shards."""
    digest = hashlib.sha256((event_id or "").encode()).hexdigest()
    return int(digest[:8], 16) % count + 1
