"""Facts of the TikTok Events API v1.3 `event/track` contract, shared by the sender and the emulator.

Source: TikTok's Events API documentation and SDK, and production connectors where TikTok's pages
are silent. Everything here is data; behaviour lives elsewhere.
"""

from __future__ import annotations

import csv
import io
import re
from importlib.resources import files
from typing import Final

DEFAULT_API_URL: Final = "https://business-api.tiktok.com/open_api/v1.3/event/track/"
TRACK_PATH_SUFFIX: Final = "/event/track/"
MAX_BATCH_SIZE: Final = 1000

EVENT_SOURCES: Final = frozenset({"web", "app", "offline", "crm"})


SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
# App events' device ids [peer: Segment's TikTok App Events destination]: a UUID, IDFA and IDFV
# in upper case, GAID in lower case, or a SHA-256 hex digest.
UPPER_DEVICE_ID: Final = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}|[0-9a-f]{64}")
LOWER_DEVICE_ID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{64}")
DEVICE_IDS: Final = {"idfa": UPPER_DEVICE_ID, "idfv": UPPER_DEVICE_ID, "gaid": LOWER_DEVICE_ID}
# App Tracking Transparency status of `user.att_status` [peer, as above]
ATT_STATUSES: Final = frozenset({"AUTHORIZED", "DENIED", "NOT_DETERMINED", "RESTRICTED", "NOT_APPLICABLE"})
CUSTOM_EVENT_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,49}")


def _reference(name: str) -> list[dict[str, str]]:
    """The rows of reference/<name>.csv, shipped with the package and loaded by dbt as the seed of
    the same name: TikTok's names live in one place (reference/_tiktok_names__seeds.yml)."""
    text = files("tiktok_sender").joinpath("reference", f"{name}.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


CURRENCIES: Final = frozenset(r["currency_code"] for r in _reference("tiktok_currencies"))
# Standard event names per event source (web, app, offline, crm).
STANDARD_EVENTS: Final[dict[str, frozenset[str]]] = {
    source: frozenset(r["event_name"] for r in _reference("tiktok_standard_events")
                      if r["event_source"] == source)
    for source in sorted(EVENT_SOURCES)
}
ALL_STANDARD_EVENTS: Final = frozenset().union(*STANDARD_EVENTS.values())


def is_valid_event_name(event_source: str, name: str) -> bool:
    """A standard name for the source, or a custom name that reuses no standard name."""
    standard = STANDARD_EVENTS.get(event_source, frozenset())
    if name in standard:
        return True
    return name not in ALL_STANDARD_EVENTS and CUSTOM_EVENT_NAME.fullmatch(name) is not None


def is_sha256_hex(value: str) -> bool:
    """True when `value` is 64 lowercase hexadecimal characters."""
    return len(value) == 64 and SHA256_HEX.fullmatch(value) is not None


# Response codes, by how a sender treats them (classification lives in classify.py).
CODE_OK: Final = 0
CODE_PARTIAL_OK: Final = 20001
CODE_INVALID_PARAMS: Final = 40000
CODE_PERMISSION_ERROR: Final = 40001
CODE_PARAM_ERROR: Final = 40002
CODE_VERSION_ERROR: Final = 40006
CODE_DUPLICATED_REQUEST: Final = 40050
CODE_INVALID_API_VERSION: Final = 40051
CODE_INVALID_BATCH_SIZE: Final = 40061
CODE_PII_NOT_HASHED: Final = 40062
CODE_REQUEST_TOO_FREQUENT: Final = 40100
CODE_ACCESS_TOKEN_EXPIRE: Final = 40102
CODE_EMPTY_ACCESS_TOKEN: Final = 40104
CODE_INVALID_ACCESS_TOKEN: Final = 40105
CODE_REQUEST_FREQUENCY_LIMITED: Final = 40132
CODE_SYS_ERROR: Final = 50000
CODE_SYS_TIMEOUT: Final = 50002
CODE_MAINTENANCE: Final = 60001
CODE_TOO_MANY_REQUESTS_BL: Final = 61000
