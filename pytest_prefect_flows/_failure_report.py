"""What a test's report shows of its runs: each run-log line once, a long error text once.

Besides the plugin's "Captured Prefect flow-run logs" section, pytest would keep two more copies of
every run-logger record: its log capture ("Captured log call") and the captured stderr Prefect's
console handler wrote to ("Captured stderr call"). `RecordedRunLogs` keeps the records a `RunLog`
holds out of both, so the section is the one copy; every other record (the test's own logging,
Prefect's other loggers) and every `print` stays where pytest puts it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

    from pytest_prefect_flows.recording import RunLog, _RunRecord

RUN_LOGS_SECTION = "Captured Prefect flow-run logs"
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
SAME_AS_ABOVE = "[same as above]"
MIN_REPEATED = 80  # a shorter text (one line) reads as fast as a reference to it
SHOWN_LINES = 25  # the section's last lines shown by default; -v shows up to VERBOSE_LINES
VERBOSE_LINES = 200
IN_SECTION = f"  its log lines: in {RUN_LOGS_SECTION!r} below"

_reported: set[RunLog] = set()  # the run logs whose records the failing test's report will show


@contextlib.contextmanager
def reported(run_log: RunLog) -> Iterator[None]:
    """While the test runs, assertion messages point at the section instead of quoting its lines."""
    _reported.add(run_log)
    try:
        yield
    finally:
        _reported.discard(run_log)


def in_report(records: list[logging.LogRecord]) -> bool:
    """Whether the test's report shows these records (so a message need not quote them)."""
    return bool(records) and any(run_log.holds(records[-1]) for run_log in list(_reported))


class RecordedRunLogs(logging.Filter):
    """A handler filter letting through every record but the run-logger records a `RunLog` holds."""

    def filter(self, record: logging.LogRecord) -> bool:
        recording = sys.modules.get("pytest_prefect_flows.recording")
        if recording is None or record.name not in RUN_LOGGERS:
            return True
        return not any(run_log.holds(record) for run_log in recording.HUB.listeners)


_RECORDED = RecordedRunLogs()


def keep_run_logs_in_their_section(config: pytest.Config) -> None:
    """pytest's "Captured log" sections, and the console output pytest captures, leave out the
    records the flow-run log section shows (caplog still has them all).

    Called once Prefect is imported (its logging set up); with `-s` the console stays as it is.
    """
    handlers = [getattr(config.pluginmanager.get_plugin("logging-plugin"), "report_handler", None)]
    if config.getoption("capture", "fd") in ("fd", "sys"):
        from prefect.logging.handlers import PrefectConsoleHandler

        handlers += [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    for handler in handlers:
        if isinstance(handler, logging.Handler) and _RECORDED not in handler.filters:
            handler.addFilter(_RECORDED)
            config.add_cleanup(functools.partial(handler.removeFilter, _RECORDED))


def format_logs(run_log: RunLog, verbose: bool = False) -> str:
    """The last run-logger lines of the test's runs, a long error text written out once."""
    from pytest_prefect_flows.runner import log_line

    records = run_log.all_logs()
    limit = VERBOSE_LINES if verbose else SHOWN_LINES
    lines = [log_line(record) for record in records[-limit:]]
    if len(records) > limit:
        where = "run.logs and prefect_logs have all" if verbose else "-v shows them"
        lines.insert(0, f"... {len(records) - limit} earlier lines ({where})")
    return cap_repeats("\n".join(lines), error_texts([*run_log.flow_runs, *run_log.task_runs]))


def error_texts(runs: Iterable[_RunRecord]) -> set[str]:
    """The messages of the exceptions that ended the runs' attempts, and of logged exceptions."""
    errors: list[BaseException | None] = []
    for run in runs:
        errors += [run.exception, *run.attempt_exceptions.values()]
        errors += [record.exc_info[1] for record in run.logs if record.exc_info]
    return {str(error) for error in errors if error is not None}


def cap_repeats(text: str, phrases: Iterable[str]) -> str:
    """`text` with every long phrase written out where it first appears, `[same as above]` after."""
    for phrase in sorted({p for p in phrases if len(p) >= MIN_REPEATED}, key=len, reverse=True):
        first = text.find(phrase)
        if first >= 0:
            end = first + len(phrase)
            text = text[:end] + text[end:].replace(phrase, SAME_AS_ABOVE)
    return text
