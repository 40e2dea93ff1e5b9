"""Events on their way out: columnar events, batches per event source, request bodies.

Events stay columnar (`Events`: Arrow arrays) from the outbox read to the receipts; each is encoded
once, so a request body is the shared envelope plus the payloads joined, and splitting a batch
never re-encodes anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Self

import orjson
import pyarrow as pa
import pyarrow.compute as pc

GroupKey = tuple[str, str]  # (event_source, event_source_id)


class Event(NamedTuple):
    """One event ready to send: what receipts need, plus its encoded JSON."""

    event_id: str
    event: str
    event_time: int
    experiment_cell: str | None
    payload: bytes
    payload_sha256: str


class Events:
    """Events of one group, columnar: one Arrow array per `Event` field (payloads as strings).

    Slicing, filtering and concatenating never copy a payload into Python; `joined` gives the
    payloads separated by commas, the inside of a request's `data` array."""

    __slots__ = ("event", "event_id", "event_time", "experiment_cell", "payload", "payload_sha256")

    def __init__(
        self,
        event_id: pa.Array,
        event: pa.Array,
        event_time: pa.Array,
        experiment_cell: pa.Array,
        payload: pa.Array,
        payload_sha256: pa.Array,
    ) -> None:
        self.event_id = event_id
        self.event = event
        self.event_time = event_time
        self.experiment_cell = experiment_cell
        self.payload = payload
        self.payload_sha256 = payload_sha256

    def _columns(self) -> tuple[pa.Array, ...]:
        return (self.event_id, self.event, self.event_time, self.experiment_cell, self.payload,
                self.payload_sha256)

    @classmethod
    def of(cls, events: Sequence[Event]) -> Self:
        """Columnar events from `Event` tuples."""
        return cls(
            pa.array([e.event_id for e in events], pa.string()),
            pa.array([e.event for e in events], pa.string()),
            pa.array([e.event_time for e in events], pa.int64()),
            pa.array([e.experiment_cell for e in events], pa.string()),
            pa.array([e.payload.decode() for e in events], pa.string()),
            pa.array([e.payload_sha256 for e in events], pa.string()),
        )

    @classmethod
    def concat(cls, parts: Sequence[Events]) -> Events:
        if len(parts) == 1:
            return parts[0]
        columns = zip(*(p._columns() for p in parts), strict=True)
        return Events(*(pa.concat_arrays(list(c)) for c in columns))

    def __len__(self) -> int:
        return len(self.event_id)

    def __getitem__(self, index: int) -> Event:
        e_id, name, time, cell, payload, digest = (c[index].as_py() for c in self._columns())
        return Event(e_id, name, time, cell, payload.encode(), digest)

    def __iter__(self) -> Iterator[Event]:
        for index in range(len(self)):
            yield self[index]

    def slice(self, start: int, stop: int) -> Events:
        return Events(*(c.slice(start, stop - start) for c in self._columns()))

    def filter(self, mask: pa.Array) -> Events:
        return Events(*(c.filter(mask) for c in self._columns()))

    def take(self, indices: Sequence[int]) -> Events:
        positions = pa.array(indices, pa.int64())
        return Events(*(c.take(positions) for c in self._columns()))

    def joined(self) -> bytes:
        """The payloads separated by commas."""
        as_list = pa.ListArray.from_arrays(pa.array([0, len(self)], pa.int32()), self.payload)
        joined: bytes = pc.binary_join(as_list.cast(pa.list_(pa.binary())), b",")[0].as_py()
        return joined


@dataclass
class Batch:
    """Events of one group, sent together; `attempt` counts sends of these events in the run."""

    event_source: str
    event_source_id: str
    events: Events
    attempt: int = 0  # sends of these events in this run (the receipts' `attempt`)
    retries: int = 0  # transient answers drawn (policy.Part.retries)
    depth: int = 0  # splits since the batch was built (policy.Part.depth)

    def __len__(self) -> int:
        return len(self.events)

    @property
    def key(self) -> GroupKey:
        return (self.event_source, self.event_source_id)

    def part(self, indexes: Sequence[int], *, retries: int, depth: int) -> Batch:
        """The events at `indexes` (a range slices, without copying), as a batch of their own."""
        if isinstance(indexes, range) and indexes.step == 1:
            events = self.events.slice(indexes.start, indexes.stop)
        else:
            events = self.events.take(list(indexes))
        return Batch(self.event_source, self.event_source_id, events, self.attempt, retries, depth)


def envelope(event_source: str, event_source_id: str, test_event_code: str | None) -> bytes:
    """The request body up to and including `"data":[`."""
    head: dict[str, Any] = {"event_source": event_source, "event_source_id": event_source_id}
    if test_event_code:
        head["test_event_code"] = test_event_code
    return orjson.dumps(head)[:-1] + b',"data":['


def body(batch: Batch, test_event_code: str | None) -> bytes:
    """The exact request body of `batch`."""
    head = envelope(batch.event_source, batch.event_source_id, test_event_code)
    return head + batch.events.joined() + b"]}"


class Batcher:
    """Accumulates events per group and hands out batches of at most `size` events."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._open: dict[GroupKey, list[Events]] = {}

    def add(self, groups: dict[GroupKey, Events]) -> Iterator[Batch]:
        for key, events in groups.items():
            parts = self._open.setdefault(key, [])
            parts.append(events)
            total = sum(len(p) for p in parts)
            if total < self.size:
                continue
            merged = Events.concat(parts)
            full = total - total % self.size
            for start in range(0, full, self.size):
                yield Batch(key[0], key[1], merged.slice(start, start + self.size))
            self._open[key] = [merged.slice(full, total)] if full < total else []

    def flush(self) -> Iterator[Batch]:
        for key, parts in self._open.items():
            if parts:
                yield Batch(key[0], key[1], Events.concat(parts))
        self._open.clear()
