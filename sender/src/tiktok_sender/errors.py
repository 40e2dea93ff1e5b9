"""The package's one exception root and the exit code each failure maps to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_CONFIG = 4
EXIT_BUSY = 5
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class SenderError(Exception):
    """Root of every error the sender reports to the user as one line, without a traceback."""

    exit_code: int = EXIT_CONFIG


class ConfigError(SenderError):
    """Settings, profile or API endpoint are wrong: fix the configuration and run again."""

    exit_code = EXIT_CONFIG


class WarehouseError(SenderError):
    """The warehouse cannot be opened or lacks the outbox table or columns."""

    exit_code = EXIT_CONFIG


class WarehouseBusyError(WarehouseError):
    """Another process holds the delivery lease past the wait (DuckDB: the file lock;
    PostgreSQL: the advisory lock)."""

    exit_code = EXIT_BUSY


class LeaseLostError(WarehouseError):
    """The delivery lease taken at the start is no longer held (PostgreSQL: the session that held
    the advisory lock ended): another run may now select the same events, so this one must stop."""


class AuthError(SenderError):
    """The API refused the access token or its permissions: the run stopped."""

    exit_code = EXIT_AUTH


class ApiConfigError(ConfigError):
    """The API answered in a way that only a configuration change can fix (URL, API version)."""
