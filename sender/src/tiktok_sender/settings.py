"""Validated run settings, built from flags and `TIKTOK_*` environment variables by the CLI.

The access token is held in a `Secret` whose repr and str never show it; `redact` removes it from
any text that leaves the process (log lines, error messages).
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tiktok_sender.api.contract import MAX_BATCH_SIZE
from tiktok_sender.errors import ConfigError
from tiktok_sender.shard import Shard

REDACTED = "***"


class Secret:
    """A string that is only revealed on purpose (the `Access-Token` header)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


def redact(text: str, *secrets: Secret | None) -> str:
    """`text` with every occurrence of each secret replaced by ***."""
    for secret in secrets:
        if secret is not None and secret.reveal():
            text = text.replace(secret.reveal(), REDACTED)
    return text


MIN_TOKEN_LENGTH = 8  # TikTok's access tokens are tens of characters long


def load_token(token: str | None, token_file: Path | None) -> Secret | None:
    """The access token from a file (first) or a value; None when neither is given."""
    if token_file is not None:
        try:
            raw = token_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {token_file}: {exc.strerror}") from None
        value = raw.strip()
        if not value:
            raise ConfigError(f"the token file {token_file} is empty")
    elif token is not None and token.strip():
        value = token.strip()
    else:
        return None
    if any(ch.isspace() for ch in value):
        raise ConfigError("the access token contains whitespace; check TIKTOK_ACCESS_TOKEN")
    if len(value) < MIN_TOKEN_LENGTH:
        # a placeholder, not a token; and redaction would mask every occurrence of those few
        # characters in what the sender prints
        raise ConfigError(
            f"the access token is {len(value)} characters long, too short to be a TikTok access "
            "token; check TIKTOK_ACCESS_TOKEN"
        )
    return Secret(value)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_HOSTNAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return len(host) <= 253 and _HOSTNAME.fullmatch(host) is not None


def validate_api_url(url: str, *, allow_insecure_http: bool = False) -> str:
    """The API URL, checked: http(s), a host, no credentials; http only on loopback or if allowed."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        raise ConfigError(f"malformed API URL: {safe_url(url)}") from None
    if parts.scheme not in ("http", "https") or not host or not _valid_host(host):
        raise ConfigError(f"malformed API URL (need http(s)://host/path): {safe_url(url)}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(
            "the API URL must not contain credentials, a query or a fragment "
            "(the token goes in TIKTOK_ACCESS_TOKEN)"
        )
    if parts.scheme == "http" and not (allow_insecure_http or _is_loopback(host)):
        raise ConfigError(
            f"refusing plain http to {host}: use https, or --allow-insecure-http for a test endpoint"
        )
    return url.strip()


TIKTOK_API_DOMAIN = "tiktok.com"


def unusual_api_host(url: str) -> str | None:
    """The host of `url` when it is neither TikTok's (`*.tiktok.com`) nor a loopback address:
    the events and the access token would go to someone else. None otherwise."""
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    if host == TIKTOK_API_DOMAIN or host.endswith("." + TIKTOK_API_DOMAIN) or _is_loopback(host):
        return None
    return host


def safe_url(url: str) -> str:
    """`url` without user info, query or fragment: safe to log and to store."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<unparseable URL>"


# DuckDB's memory limit for a push. A run with an outbox_seq mark (`warehouse.pending`) holds only
# the keys of recent terminal receipts; a run whose pending read holds the keys of more than half a
# million receipts gets 1 GB (`warehouse.duckdb`). Lower limits keep less of the file cached: the
# peak RSS of a push follows it (README "Performance").
DEFAULT_DUCKDB_MEMORY_LIMIT = "64MB"
DUCKDB_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)
_UNITS = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def memory_bytes(size: str) -> float:
    """A DuckDB memory size (`512MB`, `2 GiB`) in bytes; ConfigError if it is not one."""
    match = DUCKDB_MEMORY.fullmatch(size.strip())
    if match is None:
        raise ConfigError(f"not a memory size: {size!r} (write it like 512MB or 2GB)")
    number = float(size.strip()[: match.start(2)])
    return number * _UNITS[match.group(2).lower()]


@dataclass(frozen=True)
class PushSettings:
    """Everything `sender push` needs besides the warehouse. Validated on construction."""

    api_url: str
    token: Secret | None = field(default=None)
    test_event_code: str | None = None
    batch_size: int = MAX_BATCH_SIZE
    concurrency: int = 4
    rate_limit: float | None = None
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_age_days: float = 28.0
    max_failure_rate: float = 0.0
    retry_rejected: bool = False
    rescan: bool = False  # read the whole history, not what is new since the last complete run
    dry_run: bool = False
    limit: int | None = None
    dump: Path | None = None
    allow_insecure_http: bool = False
    read_chunk_rows: int = 2048  # rows per outbox read: bounds the memory of a chunk's payloads
    lock_timeout: float = 0.0
    shard: Shard | None = None
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    proxy: str | None = None  # an explicit proxy URL for the API requests
    use_env_proxy: bool = False  # use HTTPS_PROXY / NO_PROXY (and SSL_CERT_*) from the environment
    # a replay: the run's clock starts at this past instant (naive UTC; run_state.Clock)
    clock_start: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "api_url", validate_api_url(self.api_url, allow_insecure_http=self.allow_insecure_http)
        )
        if self.test_event_code is not None:
            code = self.test_event_code.strip()
            object.__setattr__(self, "test_event_code", code or None)
        _check(1 <= self.batch_size <= MAX_BATCH_SIZE, f"--batch-size must be 1..{MAX_BATCH_SIZE}")
        _check(1 <= self.concurrency <= 256, "--concurrency must be 1..256")
        _check(self.rate_limit is None or self.rate_limit > 0, "--rate-limit must be > 0")
        _check(self.max_attempts >= 1, "--max-attempts must be >= 1")
        _check(self.backoff_base >= 0 and self.backoff_max >= 0, "backoff must be >= 0")
        _check(self.connect_timeout > 0 and self.read_timeout > 0, "timeouts must be > 0")
        _check(self.max_age_days > 0, "--max-age-days must be > 0")
        _check(0.0 <= self.max_failure_rate <= 1.0, "--max-failure-rate must be within 0..1")
        _check(self.limit is None or self.limit >= 0, "--limit must be >= 0")
        _check(self.read_chunk_rows >= 1, "read chunk must be >= 1 row")
        _check(self.lock_timeout >= 0, "--lock-timeout must be >= 0")
        try:
            memory_bytes(self.duckdb_memory_limit)
        except ConfigError:
            raise ConfigError("--duckdb-memory-limit must be a size such as 512MB or 2GB") from None
        _check(not math.isnan(self.max_age_days), "--max-age-days must be a number")
        if self.proxy is not None:
            _check(self.proxy.strip() != "", "--proxy must not be empty")
            _check(not self.use_env_proxy, "--proxy and --use-env-proxy exclude each other")
            try:
                scheme = urlsplit(self.proxy.strip()).scheme
            except ValueError:
                scheme = ""
            _check(scheme in ("http", "https"),
                   "--proxy must be an http(s) URL such as http://proxy.internal:3128")
        if self.clock_start is not None:
            start = self.clock_start
            if start.tzinfo is not None:
                start = start.astimezone(UTC).replace(tzinfo=None)
                object.__setattr__(self, "clock_start", start)
            _check(start <= datetime.now(UTC).replace(tzinfo=None),
                   "--clock-start must not be in the future: it replays a past instant")
        if not self.dry_run and self.token is None:
            raise ConfigError(
                "no access token: set TIKTOK_ACCESS_TOKEN or --token-file (not needed with --dry-run)"
            )

    def to_record(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict for the runs table: no token, URL without secrets."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "token"}
        record["api_url"] = safe_url(self.api_url)
        record["dump"] = str(self.dump) if self.dump is not None else None
        record["token_set"] = self.token is not None
        record["shard"] = str(self.shard) if self.shard is not None else None
        record["proxy"] = safe_url(self.proxy) if self.proxy else None  # no proxy credentials
        record["clock_start"] = self.clock_start.isoformat() if self.clock_start else None
        return record


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
