"""Errors raised by state hooks, which Prefect logs and otherwise ignores.

A hook with the wrong signature (`def notify(flow, state)`; Prefect 3 calls `hook(flow, flow_run,
state)`) raises `TypeError` every time, Prefect logs "An error was encountered while running hook
..." and the run keeps its state: the test passes and the alert never fires. `hook_errors_in(logs)`
finds those log records; `check_hook_errors(run_log, mode)` turns them into a warning (`warn`), a
failure (`fail`) or nothing (`ignore`) at the end of a test.

A hook error the test looked at (`assert_no_hook_errors(run)`, even inside `pytest.raises`, or
`run.hook_errors`) is marked on its log record as inspected: the end of the test, and the report's
"HOOK ERROR" lines, leave it out.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_prefect_flows.exceptions import HookError, HookErrorWarning

if TYPE_CHECKING:
    from pytest_prefect_flows.recording import RunLog

MODES = ("warn", "fail", "ignore")
# The flow and task engines of Prefect 3.0 to 3.9 log this, at ERROR, with the hook's exception.
_HOOK_FAILED = re.compile(r"^An error was encountered while running hook (?P<hook>.+)$")
HINT = (
    "Prefect calls flow hooks as hook(flow, flow_run, state) and task hooks as hook(task, task_run, "
    "state). Check it with assert_no_hook_errors(run); set prefect_hook_errors = fail | warn | ignore "
    "(ini, --prefect-hook-errors, or @pytest.mark.prefect(hook_errors=...)) to choose what a test does."
)


@dataclass(frozen=True)
class HookFailure:
    """One state hook that raised: its name, its exception and the run it ran for."""

    hook: str
    exception: BaseException
    run_name: str
    kind: str  # "flow" or "task"

    def __str__(self) -> str:
        return (
            f"hook {self.hook!r} of {self.kind} run {self.run_name!r} raised "
            f"{type(self.exception).__name__}: {self.exception}"
        )

    def to_data(self) -> dict[str, str]:
        return {
            "hook": self.hook,
            "run": self.run_name,
            "kind": self.kind,
            "error": f"{type(self.exception).__name__}: {self.exception}",
        }


_INSPECTED = "pytest_prefect_flows_inspected"


def inspect_hook_errors(records: Iterable[logging.LogRecord]) -> list[HookFailure]:
    """Every hook failure among the records, inspected or not, now marked as inspected by the test."""
    records = list(records)
    failures = hook_errors_in(records, include_inspected=True)
    for record in records:
        if _HOOK_FAILED.match(record.getMessage()):
            setattr(record, _INSPECTED, True)
    return failures


def hook_errors_in(
    records: Iterable[logging.LogRecord], *, include_inspected: bool = False
) -> list[HookFailure]:
    """The hook failures among run-logger records, in the order they were logged; those the test
    inspected only with `include_inspected`."""
    failures = []
    for record in records:
        match = _HOOK_FAILED.match(record.getMessage())
        error = record.exc_info[1] if record.exc_info else None
        if match is None or error is None:
            continue
        if getattr(record, _INSPECTED, False) and not include_inspected:
            continue
        task_run = getattr(record, "task_run_name", None)
        failures.append(
            HookFailure(
                hook=_unquote(match["hook"]),
                exception=error,
                run_name=str(task_run or getattr(record, "flow_run_name", "?")),
                kind="task" if task_run else "flow",
            )
        )
    return failures


def _unquote(text: str) -> str:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, str) else text


def describe(failures: list[HookFailure]) -> str:
    lines = [f"{len(failures)} state hook(s) raised; Prefect logged the error and kept the run's state:"]
    lines += [f"  {failure}" for failure in failures]
    lines.append(HINT)
    return "\n".join(lines)


def check_hook_errors(run_log: RunLog, mode: str, *, test_failed: bool = False) -> HookErrorWarning | None:
    """At the end of a test: the warning to issue (`warn`) about hooks that raised in its runs, or
    `HookError` raised (`fail`). A test that already failed gets the warning, not a second failure.
    """
    __tracebackhide__ = True
    if mode == "ignore":
        return None
    failures = hook_errors_in(run_log.all_logs())
    if not failures:
        return None
    if mode == "fail" and not test_failed:
        raise HookError(describe(failures))
    return HookErrorWarning(describe(failures))
