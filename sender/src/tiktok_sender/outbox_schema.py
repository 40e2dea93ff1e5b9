"""The outbox as the sender reads it: its columns, and the types they are read as."""

from __future__ import annotations

from typing import Final

import pyarrow as pa

OUTBOX_TABLE: Final = "tiktok_events_outbox"

# Outbox columns the sender reads, in the order of the pending query (value cast to double).
OUTBOX_COLUMNS: tuple[str, ...] = (
    "event_source",
    "event_source_id",
    "event_id",
    "event",
    "event_time",
    "email_sha256",
    "phone_sha256",
    "external_id_sha256",
    "ttclid",
    "ttp",
    "ip",
    "user_agent",
    "page_url",
    "value",
    "currency",
    "order_id",
    "experiment_cell",
)
# The Arrow schema of the pending rows every reader hands out (the outbox contract's types).
OUTBOX_SCHEMA = pa.schema(
    [
        (c, pa.int64() if c == "event_time" else pa.float64() if c == "value" else pa.string())
        for c in OUTBOX_COLUMNS
    ]
)
