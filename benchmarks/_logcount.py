"""Counting the log messages that show the native harness's failure modes, for the benchmarks."""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterator
from typing import ClassVar


class MessageCounter(logging.Handler):
    """Counts client retries and "database is locked" in every log record, each record once."""

    PATTERNS: ClassVar[dict[str, str]] = {
        "retry_503": "retryable status code 503",
        "client_retries": "Another attempt will be made",
        "database_locked": "database is locked",
    }

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.counts = dict.fromkeys(self.PATTERNS, 0)
        self._seen: weakref.WeakSet[logging.LogRecord] = weakref.WeakSet()

    def emit(self, record: logging.LogRecord) -> None:
        if record in self._seen:  # the counter sits on several loggers a record propagates through
            return
        self._seen.add(record)
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += repr(record.exc_info[1])
        for key, pattern in self.PATTERNS.items():
            if pattern in text:
                self.counts[key] += 1


@contextlib.contextmanager
def counting_messages(console_level: int = logging.INFO) -> Iterator[MessageCounter]:
    """A `MessageCounter` on the root, Prefect, client and server loggers, the client at DEBUG
    (where it logs its retries); console handlers show only `console_level` and above meanwhile."""
    counter = MessageCounter()
    loggers = [logging.getLogger(name) for name in ("", "prefect", "prefect.client", "prefect.server")]
    levels = [(logger, logger.level) for logger in loggers]
    consoles = [(handler, handler.level) for logger in loggers for handler in logger.handlers]
    for handler, level in consoles:
        handler.setLevel(max(level, console_level))
    for logger in loggers:
        logger.addHandler(counter)
    logging.getLogger("prefect.client").setLevel(logging.DEBUG)
    try:
        yield counter
    finally:
        for logger, level in levels:
            logger.removeHandler(counter)
            logger.setLevel(level)
        for handler, level in consoles:
            handler.setLevel(level)
