"""Log lines on stderr with every secret redacted: the one logging set-up of the `sender`
commands and of the emulator's."""

from __future__ import annotations

import logging
import sys
import traceback

from tiktok_sender.settings import Secret, redact

# Loggers of the libraries a run writes through; their records go through the same redacting
# handler as the sender's own.
LIBRARY_LOGGERS = ("httpx", "httpcore", "asyncio", "urllib3")


class _Redact(logging.Filter):
    def __init__(self, *secrets: Secret | None) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), *self._secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # the traceback text is formatted from exc_info: render it now, redacted
            record.msg += "\n" + redact(
                "".join(traceback.format_exception(*record.exc_info)).rstrip(), *self._secrets)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, *self._secrets)
        return True


def setup_logging(verbose: bool, *secrets: Secret | None, logger: str = "tiktok_sender") -> None:
    """One stderr handler on the root logger, redacting `secrets` from every record that reaches
    it: the `logger`'s own (the sender's, or the emulator's), and those of httpx, httpcore and
    asyncio (a task's exception, a transport error), which propagate to the root. Libraries log
    warnings and up (everything with --verbose)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(_Redact(*secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    own = logging.getLogger(logger)
    own.handlers.clear()
    own.setLevel(logging.DEBUG if verbose else logging.INFO)
    own.propagate = True
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
