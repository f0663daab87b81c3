"""Prefect's console log lines, written without Rich when Rich would change nothing in them.

Under pytest's capture, the stream of Prefect's console handler is not a terminal: Rich writes no
colour, yet still runs its highlighter (a dozen regular expressions) and builds styled segments
for every record, about 0.5 ms a record, several records a flow run. When the line would come out
of Rich as it went in (no colour system, no markup, no emoji code, no tab or control character),
it is written as is: the same text reaches the captured output. On a terminal (`pytest -s`), with
`FORCE_COLOR`, or for any other line, Rich writes it as before.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from pytest_prefect_flows._patching import AttributePatches

# What Rich would rewrite besides emoji codes: tabs (expanded) and the control codes it strips.
_RICH_WOULD_CHANGE = re.compile(r"[\t\x07\x08\x0b\x0c\r]")


def writes_plain(console: Any, message: str) -> bool:
    """Whether Rich's `console.print(message, soft_wrap=True)` would write `message` unchanged."""
    from rich.emoji import Emoji

    return (
        console.color_system is None
        and not getattr(console, "_markup", True)
        and not console.is_terminal
        and not _RICH_WOULD_CHANGE.search(message)
        and (":" not in message or not getattr(console, "_emoji", True) or Emoji.replace(message) == message)
    )


@contextlib.contextmanager
def plain_console_lines() -> Iterator[None]:
    """While inside, Prefect's console handler skips Rich for lines Rich would leave unchanged."""
    from prefect.logging.handlers import PrefectConsoleHandler

    rich_emit = PrefectConsoleHandler.emit

    def emit(self: PrefectConsoleHandler, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if not writes_plain(self.console, message):
                self.console.print(message, soft_wrap=True)
                return
            stream = self.console.file
            stream.write(message + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    emit.__wrapped__ = rich_emit  # type: ignore[attr-defined]
    patches = AttributePatches()
    patches.replace(PrefectConsoleHandler, "emit", emit)
    try:
        yield
    finally:
        patches.restore()
