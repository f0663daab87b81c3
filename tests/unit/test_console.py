"""Prefect's console lines under pytest's capture: the same text as Rich writes, without Rich's work."""

from __future__ import annotations

import io
import logging

import pytest
from prefect.logging.handlers import PrefectConsoleHandler

from pytest_prefect_flows._console import plain_console_lines

MESSAGES = [
    "Finished in state Completed()",
    "10:28:19.123 | INFO    | Flow run 'glorious-ant' - Created task run 'step-0' for task 'step'",
    "a :smile: emoji code, a :not_an_emoji: one",
    "a\ttab, a carriage\rreturn",
    "[bold]markup-like[/bold] text\nand a second line",
]


def written(message: str) -> str:
    stream = io.StringIO()
    handler = PrefectConsoleHandler(stream=stream)
    handler.emit(logging.LogRecord("prefect.test", logging.INFO, __file__, 1, message, (), None))
    return stream.getvalue()


@pytest.mark.parametrize("message", MESSAGES)
def test_a_captured_line_reads_as_rich_writes_it(message: str) -> None:
    rich = written(message)
    with plain_console_lines():
        assert written(message) == rich


def test_rich_is_skipped_only_for_lines_it_leaves_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    printed: list[str] = []
    before = PrefectConsoleHandler.emit
    monkeypatch.setattr("rich.console.Console.print", lambda self, text, **kwargs: printed.append(text))
    with plain_console_lines():
        plain = written(MESSAGES[1])
        written(MESSAGES[2])
    assert plain == MESSAGES[1] + "\n"
    assert printed == [MESSAGES[2]]  # an emoji code: Rich replaces it
    assert PrefectConsoleHandler.emit is before  # restored
