"""Assertion helpers over run records: final states, task states and attempts, order, retries, logs.

Each takes the `FlowRunRecord` that `run_flow(...)` returns (or one from `prefect_runs`), or a Prefect
`State` where that makes sense, and a task as a task object or its name. A failure raises
`AssertionError` whose message reads on its own (also under `--assert=plain`): what was expected,
what happened, the exception and last log lines of the task runs concerned, and the run's timeline.
A task name the run does not contain raises `UnknownTaskError` listing the names it does contain.
A task name means every run of that task (mapped or called several times); `where=` narrows them
(an index in start order, a dict of parameters, or a function of the `TaskRunRecord`).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from prefect.client.schemas.objects import State, StateType

from pytest_prefect_flows._failure_report import IN_SECTION, cap_repeats, error_texts, in_report
from pytest_prefect_flows.exceptions import UnknownTaskError, UsageError
from pytest_prefect_flows.recording import (
    HUB,
    FlowRunRecord,
    TaskRunRecord,
    Where,
    _RunRecord,
    task_name_of,
)
from pytest_prefect_flows.runner import level_number, log_line

if TYPE_CHECKING:
    from pytest_prefect_flows.artifacts import ArtifactRecord

__all__ = [
    "assert_artifact",
    "assert_cancelled",
    "assert_completed",
    "assert_crashed",
    "assert_failed",
    "assert_flow_retried",
    "assert_logged",
    "assert_no_hook_errors",
    "assert_retry_delays",
    "assert_state",
    "assert_task_cached",
    "assert_task_completed",
    "assert_task_failed",
    "assert_task_not_run",
    "assert_task_order",
    "assert_task_retried",
    "assert_task_states",
]

LOG_LINES = 5  # last log lines shown per task run concerned
MAX_FOCUS = 3  # task runs whose exception and logs a message shows
HINT = "More: run.timeline(), run.task(name).states, run.logs, or the prefect_logs fixture."


# --- run-level states -------------------------------------------------------------------------


def assert_completed(run: FlowRunRecord | TaskRunRecord | State) -> None:
    """The run ended in a Completed-type state (`Completed`, `Cached`, ...)."""
    __tracebackhide__ = True
    _expect_type("assert_completed", run, StateType.COMPLETED)


def assert_failed(
    run: FlowRunRecord | TaskRunRecord | State,
    exc: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    match: str | re.Pattern[str] | None = None,
) -> None:
    """The run Failed; with `exc`, its exception is an instance of it; with `match`, its text matches."""
    __tracebackhide__ = True
    regex = _exception_filter("assert_failed", exc, match)
    subject = _Subject.of(run, "assert_failed")
    subject.check(
        lambda subject: _type_miss(subject, StateType.FAILED) or _exception_miss(subject, exc, regex)
    )


def assert_crashed(run: FlowRunRecord | TaskRunRecord | State) -> None:
    """The run Crashed (interrupted by a `BaseException`, as a killed process would be)."""
    __tracebackhide__ = True
    _expect_type("assert_crashed", run, StateType.CRASHED)


def assert_cancelled(run: FlowRunRecord | TaskRunRecord | State) -> None:
    """The run was Cancelled."""
    __tracebackhide__ = True
    _expect_type("assert_cancelled", run, StateType.CANCELLED)


def assert_state(
    run_or_task: FlowRunRecord | TaskRunRecord | State,
    expected: str | StateType,
    *,
    task: Any = None,
    where: Where = None,
) -> None:
    """The final state has this name (e.g. "Cached", "TimedOut"; any case) or this `StateType`.

    With `task` (run_or_task being the flow run), every run of that task (`where` picks some).
    """
    __tracebackhide__ = True
    if not isinstance(expected, (str, StateType)):
        raise UsageError(
            f'assert_state() takes a state name such as "Completed" or a StateType, got {expected!r}.'
        )
    if task is None:
        _Subject.of(run_or_task, "assert_state").check(_state_miss(expected))
        return
    flow_run = _flow_record(run_or_task, "assert_state")
    _check_runs(flow_run, task, where, _state_miss(expected))


def _state_miss(expected: str | StateType) -> Verdict:
    def verdict(subject: _Subject) -> _Miss | None:
        if isinstance(expected, StateType):
            return _type_miss(subject, expected)
        if (subject.state_name or "").lower() == expected.lower():
            return None
        return _Miss(
            f"Expected {subject.label} to be in state {expected!r}; it is {subject.state_name!r}.",
            f"is not in state {expected!r}",
            expected,
            subject.state_text,
        )

    return verdict


def assert_flow_retried(
    run: FlowRunRecord | State,
    times: int | None = None,
    delays: Sequence[float] | None = None,
    tolerance: float = 0.05,
) -> None:
    """The flow run itself was retried `times` times (`attempts == times + 1`; without `times`, at
    least once), and with `delays`, asked for these delays (seconds) before its retries."""
    __tracebackhide__ = True
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 0):
        raise UsageError(f"assert_flow_retried(times=...) takes a number of retries >= 0, got {times!r}.")
    if delays is not None:
        _check_seconds("assert_flow_retried(delays=...)", delays)
    flow_run = _flow_record(run, "assert_flow_retried")
    retries = max(flow_run.attempts - 1, 0)
    retried_ok = (retries == times) if times is not None else retries > 0
    delays_ok = delays is None or _same_delays(flow_run.retry_delays, delays, tolerance)
    if retried_ok and delays_ok:
        return
    expected = "at least 1 retry" if times is None else f"{times} retry(s) ({times + 1} attempt(s))"
    details = [
        ("expected", expected + (f", delays {[float(d) for d in delays]} s" if delays is not None else "")),
        ("actual", f"{retries} retry(s) ({flow_run.attempts} attempt(s)), delays {flow_run.retry_delays} s"),
        ("states", " -> ".join(flow_run.states)),
        ("exception", _exception_text(flow_run.exception)),
    ]
    _fail(
        f"Flow run {flow_run.name!r} ({flow_run.flow_name}) was retried {retries} time(s).",
        details,
        flow_run,
        _failing_tasks(flow_run),
    )


def assert_no_hook_errors(run: FlowRunRecord | State) -> None:
    """No state hook (`on_completion`, `on_failure`, ... of the flow, its tasks or subflows) raised.

    The hook errors it saw are not reported again at the end of the test (`prefect_hook_errors`).
    """
    __tracebackhide__ = True
    from pytest_prefect_flows.hooks import HINT, inspect_hook_errors

    flow_run = _flow_record(run, "assert_no_hook_errors")
    failures = inspect_hook_errors(flow_run.all_logs())
    if not failures:
        return
    _fail(
        f"{len(failures)} state hook(s) of flow run {flow_run.name!r} ({flow_run.flow_name}) raised; "
        "Prefect logged the error and kept the run's state.",
        [
            ("expected", "no state hook raised"),
            ("actual", "\n    ".join(str(failure) for failure in failures)),
            ("hint", HINT),
        ],
        flow_run,
        [],
    )


# --- task runs --------------------------------------------------------------------------------


def assert_task_completed(run: FlowRunRecord | State, task: Any, *, where: Where = None) -> None:
    """Every run of the task (one, or all its mapped runs; `where` picks some) ended in a
    Completed-type state."""
    __tracebackhide__ = True
    flow_run = _flow_record(run, "assert_task_completed")
    runs = _task_runs(flow_run, task, where)
    unfinished = [task_run for task_run in runs if task_run.state_type != StateType.COMPLETED.value]
    if unfinished:
        listing = "; ".join(f"{task_run.name}: {_state_text(task_run.state)}" for task_run in unfinished)
        _fail(
            f"{len(unfinished)} of {len(runs)} run(s) of task {task_name_of(task)!r} did not complete.",
            [("expected", "Completed"), ("actual", listing)],
            flow_run,
            unfinished,
        )


def assert_task_failed(
    run: FlowRunRecord | State,
    task: Any,
    exc: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    match: str | re.Pattern[str] | None = None,
    *,
    where: Where = None,
) -> None:
    """Every run of the task (`where` picks some) Failed, after any retries; `exc`/`match` check
    its exception."""
    __tracebackhide__ = True
    regex = _exception_filter("assert_task_failed", exc, match)
    flow_run = _flow_record(run, "assert_task_failed")

    def verdict(subject: _Subject) -> _Miss | None:
        return _type_miss(subject, StateType.FAILED) or _exception_miss(subject, exc, regex)

    _check_runs(flow_run, task, where, verdict)


def assert_task_retried(
    run: FlowRunRecord | State, task: Any, times: int | None = None, *, where: Where = None
) -> None:
    """Every run of the task (`where` picks some) was retried `times` times (`attempts == times + 1`);
    without `times`, at least once."""
    __tracebackhide__ = True
    if times is not None and (not isinstance(times, int) or times < 0):
        raise UsageError(f"assert_task_retried(times=...) takes a number of retries >= 0, got {times!r}.")
    flow_run = _flow_record(run, "assert_task_retried")
    expected = "at least 1 retry" if times is None else f"{times} retry(s) ({times + 1} attempt(s))"

    def verdict(subject: _Subject) -> _Miss | None:
        task_run = subject.task_run
        if (task_run.retries == times) if times is not None else task_run.retries > 0:
            return None
        return _Miss(
            f"Task run {task_run.name!r} ({task_run.task_name}) was retried {task_run.retries} time(s).",
            "were never retried" if times is None else f"were not retried exactly {times} time(s)",
            expected,
            f"{task_run.retries} retry(s) ({task_run.attempts} attempt(s))",
            [("states", " -> ".join(task_run.states))],
        )

    _check_runs(flow_run, task, where, verdict)


def assert_task_not_run(run: FlowRunRecord | State, task: Any) -> None:
    """No run of the task started in this flow run (or its subflows)."""
    __tracebackhide__ = True
    flow_run = _flow_record(run, "assert_task_not_run")
    runs = flow_run.find_tasks(task)
    if not runs:
        _check_task_can_run(flow_run, task)
        return
    listing = "; ".join(f"{task_run.name}: {_state_text(task_run.state)}" for task_run in runs)
    _fail(
        f"Task {task_name_of(task)!r} ran {len(runs)} time(s).",
        [("expected", "no run"), ("actual", listing)],
        flow_run,
        runs,
    )


def assert_task_states(
    run: FlowRunRecord | State, task: Any, expected: Sequence[str], *, where: Where = None
) -> None:
    """Every run of the task (`where` picks some) passed through exactly these state names, in order."""
    __tracebackhide__ = True
    if isinstance(expected, str) or not all(isinstance(name, str) for name in expected):
        raise UsageError(
            f'assert_task_states() takes a list of state names such as ["Pending", "Running", '
            f'"Completed"], got {expected!r}.'
        )
    flow_run = _flow_record(run, "assert_task_states")

    def verdict(subject: _Subject) -> _Miss | None:
        task_run = subject.task_run
        if task_run.states == list(expected):
            return None
        return _Miss(
            f"Task run {task_run.name!r} ({task_run.task_name}) went through other states.",
            "went through other states",
            " -> ".join(expected),
            " -> ".join(task_run.states),
            [("differs at", _first_difference(list(expected), task_run.states))],
        )

    _check_runs(flow_run, task, where, verdict)


def assert_task_order(run: FlowRunRecord | State, tasks: Sequence[Any]) -> None:
    """Each task's runs all started after every run of the previous task had completed."""
    __tracebackhide__ = True
    if isinstance(tasks, str) or len(tasks) < 2:
        raise UsageError(f"assert_task_order() takes a list of at least two tasks, got {tasks!r}.")
    flow_run = _flow_record(run, "assert_task_order")
    origin = flow_run.history[0].timestamp if flow_run.history else None
    for before, after in itertools.pairwise(tasks):
        first, then = _task_runs(flow_run, before), _task_runs(flow_run, after)
        unfinished = [task_run for task_run in first if task_run.state_type != StateType.COMPLETED.value]
        if unfinished:
            _fail(
                f"Task {task_name_of(before)!r} did not complete, so {task_name_of(after)!r} "
                "cannot have started after it completed.",
                [
                    ("expected", f"{task_name_of(before)} Completed"),
                    ("actual", _state_text(unfinished[0].state)),
                ],
                flow_run,
                unfinished,
            )
        completed_at = max(task_run.ended for task_run in first if task_run.ended is not None)
        started = [task_run.started for task_run in then if task_run.started is not None]
        if started and min(started) < completed_at:
            _fail(
                f"Task {task_name_of(after)!r} started before {task_name_of(before)!r} completed.",
                [
                    ("expected", f"{task_name_of(after)} starts after {task_name_of(before)} completed"),
                    (
                        "actual",
                        f"{task_name_of(after)} started at {_offset(min(started), origin)}, "
                        f"{task_name_of(before)} completed at {_offset(completed_at, origin)}",
                    ),
                ],
                flow_run,
                [],
            )


def assert_retry_delays(
    run: FlowRunRecord | State,
    task: Any,
    expected: Sequence[float],
    tolerance: float = 0.05,
    *,
    where: Where = None,
) -> None:
    """Every run of the task (`where` picks some) asked for these delays (seconds) before its
    retries, within `tolerance`."""
    __tracebackhide__ = True
    _check_seconds("assert_retry_delays()", expected)
    flow_run = _flow_record(run, "assert_retry_delays")

    def verdict(subject: _Subject) -> _Miss | None:
        task_run = subject.task_run
        actual = task_run.retry_delays
        if _same_delays(actual, expected, tolerance):
            return None
        return _Miss(
            f"Task run {task_run.name!r} ({task_run.task_name}) asked for other retry delays.",
            "asked for other retry delays",
            f"{[float(delay) for delay in expected]} seconds (tolerance {tolerance}s)",
            f"{actual} seconds over {task_run.attempts} attempt(s)",
        )

    _check_runs(flow_run, task, where, verdict)


def assert_task_cached(run: FlowRunRecord | State, task: Any, *, where: Where = None) -> None:
    """Every run of the task (`where` picks some) took its result from the cache (final state `Cached`)."""
    __tracebackhide__ = True
    flow_run = _flow_record(run, "assert_task_cached")

    def verdict(subject: _Subject) -> _Miss | None:
        task_run = subject.task_run
        if task_run.cached:
            return None
        return _Miss(
            f"Task run {task_run.name!r} ({task_run.task_name}) did not come from the cache.",
            "did not come from the cache",
            "Cached",
            f"{_state_text(task_run.state)} (states: {' -> '.join(task_run.states)})",
            [
                (
                    "note",
                    "a run is Cached when an earlier run stored a result under the same cache key "
                    "(cache_policy / cache_key_fn) and that result can still be read",
                )
            ],
            shared=True,
        )

    _check_runs(flow_run, task, where, verdict)


# --- artifacts --------------------------------------------------------------------------------


def assert_artifact(
    run: FlowRunRecord | State,
    key: str | None = None,
    type: str | None = None,
    contains: str | None = None,
) -> ArtifactRecord:
    """The run (its task runs and subflows included) created an artifact with this key, of this type
    (`"markdown"`, `"table"`, `"link"`, `"progress"`, `"image"`, ...), whose data contains the text
    `contains` (data that is not a string: its JSON). Returns the last artifact that matches."""
    __tracebackhide__ = True
    for name, value in (("key", key), ("type", type), ("contains", contains)):
        if value is not None and not isinstance(value, str):
            raise UsageError(f"assert_artifact({name}=...) takes a string, got {value!r}.")
    flow_run = _flow_record(run, "assert_artifact")
    artifacts = _all_artifacts(flow_run)
    matching = [
        artifact
        for artifact in artifacts
        if (key is None or artifact.key == key)
        and (type is None or artifact.type == type)
        and (contains is None or contains in artifact.text)
    ]
    if matching:
        return matching[-1]
    wanted = [f"{name}={value!r}" for name, value in (("key", key), ("type", type)) if value is not None]
    wanted += [f"containing {contains!r}"] if contains is not None else []
    description = " ".join(wanted) or "any"
    listing = "\n    ".join(_artifact_line(artifact) for artifact in artifacts) or "(none)"
    _fail(
        f"Flow run {flow_run.name!r} ({flow_run.flow_name}) created no artifact "
        f"{'like that' if wanted else 'at all'}: {len(artifacts)} artifact(s), none matching.",
        [("expected", f"an artifact: {description}"), ("actual", listing)],
        flow_run,
        [],
    )


def _all_artifacts(flow_run: FlowRunRecord) -> list[ArtifactRecord]:
    return [*flow_run.artifacts, *(a for subflow in flow_run.subflows for a in _all_artifacts(subflow))]


def _artifact_line(artifact: ArtifactRecord) -> str:
    where = f" (task run {artifact.task_run.name})" if artifact.task_run is not None else ""
    text = artifact.text.replace("\n", "\\n")
    shown = text if len(text) <= 80 else text[:77] + "..."
    return f"key={artifact.key!r} type={artifact.type!r}{where}: {shown}"


# --- logs -------------------------------------------------------------------------------------


def assert_logged(
    run: FlowRunRecord | TaskRunRecord | State, pattern: str | re.Pattern[str], level: int | str | None = None
) -> None:
    """A run-logger line of the run (its tasks and subflows included) matches the regex `pattern`.

    With `level` ("WARNING", logging.WARNING, ...), only lines logged at exactly that level count.
    """
    __tracebackhide__ = True
    regex = _regex(pattern, "assert_logged")
    subject = _Subject.of(run, "assert_logged")
    number = None if level is None else level_number(level)
    records = subject.logs()
    candidates = [record for record in records if number is None or record.levelno == number]
    if any(regex.search(record.getMessage()) for record in candidates):
        return
    where = "" if number is None else f" at level {_level_name(number)}"
    shown = candidates[-20:] or records[-20:]
    listing = "\n".join(f"    {log_line(record)}" for record in shown) or "    (none)"
    subject.fail(
        f"No log line of {subject.label}{where} matches {regex.pattern!r}.",
        f"a line{where} matching {regex.pattern!r}",
        f"{len(candidates)} line(s){where} of {len(records)}, none matching; "
        f"last {'ones' if candidates else 'lines'}:\n{listing}",
        focus=[],
    )


def _check_seconds(helper: str, seconds: Any) -> None:
    if isinstance(seconds, (str, bytes)) or not all(
        isinstance(delay, (int, float)) and not isinstance(delay, bool) for delay in seconds
    ):
        raise UsageError(f"{helper} takes a list of seconds such as [1, 5], got {seconds!r}.")


def _same_delays(actual: Sequence[float], expected: Sequence[float], tolerance: float) -> bool:
    return len(actual) == len(expected) and all(
        abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)
    )


# --- subjects and messages --------------------------------------------------------------------


class _Subject:
    """What a run-level helper looks at: a flow run, a task run or a bare State, with its flow run."""

    def __init__(self, record: _RunRecord | None, flow_run: FlowRunRecord | None, state: State | None = None):
        self.record = record
        self.flow_run = flow_run
        self.state = record.state if record is not None else state

    @classmethod
    def of(cls, value: Any, helper: str) -> _Subject:
        if isinstance(value, _Subject):
            return value
        if isinstance(value, FlowRunRecord):
            return cls(value, value)
        if isinstance(value, TaskRunRecord):
            return cls(value, _recorded_flow_run(value.flow_run_id))
        if isinstance(value, State):
            details = value.state_details
            task_run = _recorded_task_run(details.task_run_id)
            if task_run is not None:
                return cls(task_run, _recorded_flow_run(task_run.flow_run_id), value)
            flow_run = _recorded_flow_run(details.flow_run_id)
            return cls(flow_run, flow_run, value) if flow_run is not None else cls(None, None, value)
        raise UsageError(
            f"{helper}() takes a FlowRunRecord (from run_flow(...) or prefect_runs), a TaskRunRecord "
            f"or a Prefect State, got {type(value).__name__} {value!r}."
        )

    @property
    def task_run(self) -> TaskRunRecord:
        assert isinstance(self.record, TaskRunRecord)
        return self.record

    @property
    def label(self) -> str:
        if isinstance(self.record, TaskRunRecord):
            return f"task run {self.record.name!r} ({self.record.task_name})"
        if isinstance(self.record, FlowRunRecord):
            return f"flow run {self.record.name!r} ({self.record.flow_name})"
        return "the state's run"

    @property
    def state_name(self) -> str | None:
        return self.state.name if self.state is not None else None

    @property
    def state_text(self) -> str:
        return _state_text(self.state)

    @property
    def exception(self) -> BaseException | None:
        if self.record is not None:
            return self.record.exception
        from pytest_prefect_flows.recording import _exception_of

        return _exception_of(self.state)

    def logs(self) -> list[Any]:
        if isinstance(self.record, FlowRunRecord):
            return self.record.all_logs()
        return list(self.record.logs) if self.record is not None else []

    def check(self, verdict: Verdict) -> None:
        __tracebackhide__ = True
        miss = verdict(self)
        if miss is not None:
            self.fail(miss.headline, miss.expected, miss.actual)

    def fail(
        self, headline: str, expected: str, actual: str, focus: list[TaskRunRecord] | None = None
    ) -> NoReturn:
        __tracebackhide__ = True
        details = [("expected", expected), ("actual", actual)]
        if isinstance(self.record, TaskRunRecord):
            focus = [self.record] if focus is None else focus
        elif focus is None:
            details.append(("exception", _exception_text(self.exception)))
            focus = _failing_tasks(self.flow_run)
        _fail(headline, details, self.flow_run, focus)


@dataclasses.dataclass
class _Miss:
    """Why one run fails a check: the headline when it is the only run checked, the summary when
    several are (`2 of 3 run(s) of task 'x' <summary>.`), expected against actual, more details."""

    headline: str
    summary: str
    expected: str
    actual: str
    extra: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    shared: bool = False  # `extra` says the same for every run: shown once


Verdict = Callable[[_Subject], "_Miss | None"]


def _check_runs(flow_run: FlowRunRecord, task: Any, where: Where, verdict: Verdict) -> None:
    """Every run of `task` that `where` picks passes `verdict`; else one failure naming those that did not."""
    __tracebackhide__ = True
    runs = _task_runs(flow_run, task, where)
    misses = [(task_run, verdict(_Subject(task_run, flow_run))) for task_run in runs]
    failed = [(task_run, miss) for task_run, miss in misses if miss is not None]
    if not failed:
        return
    if len(runs) == 1:
        miss = failed[0][1]
        _fail(
            miss.headline, [("expected", miss.expected), ("actual", miss.actual), *miss.extra], flow_run, runs
        )
    first = failed[0][1]
    actual = "\n    ".join(
        f"{task_run.name}: {miss.actual}"
        + ("" if miss.shared else "".join(f"; {k}: {v}" for k, v in miss.extra))
        for task_run, miss in failed
    )
    _fail(
        f"{len(failed)} of {len(runs)} run(s) of task {task_name_of(task)!r} {first.summary}.",
        [("expected", first.expected), ("actual", actual), *(first.extra if first.shared else [])],
        flow_run,
        [task_run for task_run, _ in failed],
    )


def _type_miss(subject: _Subject, expected: StateType) -> _Miss | None:
    if subject.state is not None and subject.state.type == expected:
        return None
    wanted = expected.value.capitalize()
    actual = subject.state.type.value.capitalize() if subject.state is not None else "without a state"
    return _Miss(
        f"Expected {subject.label} to be {wanted}; it is {actual}.",
        f"are not {wanted}",
        wanted,
        subject.state_text,
    )


def _expect_type(helper: str, run: Any, expected: StateType) -> None:
    __tracebackhide__ = True
    _Subject.of(run, helper).check(lambda subject: _type_miss(subject, expected))


def _exception_filter(helper: str, exc: Any, match: Any) -> re.Pattern[str] | None:
    """Checks `exc` and `match` before any run is looked at; returns `match` compiled."""
    if exc is not None and not _is_exception_type(exc):
        raise UsageError(f"{helper}(exc=...) takes an exception class (or tuple of them), got {exc!r}.")
    return _regex(match, helper) if match is not None else None


def _exception_miss(subject: _Subject, exc: Any, regex: re.Pattern[str] | None) -> _Miss | None:
    error = subject.exception
    if exc is not None and not isinstance(error, exc):
        got = type(error).__name__ if error is not None else "no exception"
        return _Miss(
            f"Expected {subject.label} to fail with {_exc_names(exc)}; it failed with {got}.",
            f"did not fail with {_exc_names(exc)}",
            _exc_names(exc),
            _exception_text(error),
        )
    if regex is not None and (error is None or not regex.search(str(error))):
        return _Miss(
            f"Expected {subject.label} to fail with an exception matching {regex.pattern!r}; it did not.",
            f"did not fail with an exception matching {regex.pattern!r}",
            f"exception matching {regex.pattern!r}",
            _exception_text(error),
        )
    return None


def _fail(
    headline: str, details: list[tuple[str, str]], flow_run: FlowRunRecord | None, focus: list[TaskRunRecord]
) -> NoReturn:
    __tracebackhide__ = True
    width = max(len(key) for key, _ in details) + 1
    lines = [headline, *(f"  {key + ':':<{width}} {value}" for key, value in details)]
    for task_run in focus[:MAX_FOCUS]:
        lines += _task_section(task_run)
    if len(focus) > MAX_FOCUS:
        lines.append(f"... and {len(focus) - MAX_FOCUS} more task run(s)")
    if flow_run is not None:
        lines.append(flow_run.timeline())
    lines.append(HINT)
    runs = [*focus, flow_run] if flow_run is not None else focus
    raise AssertionError(cap_repeats("\n".join(lines), error_texts(runs)))


def _task_section(task_run: TaskRunRecord) -> list[str]:
    lines = [
        f"Task run {task_run.name!r} ({task_run.task_name}): {_state_text(task_run.state)} "
        f"after {task_run.attempts} attempt(s)"
    ]
    error = task_run.exception
    if error is not None:
        lines.append(f"  exception: {_exception_text(error)}")
    if in_report(task_run.logs):
        lines.append(IN_SECTION)
    elif task_run.logs:
        lines.append(f"  last log lines of {task_run.name}:")
        lines += [f"    {log_line(record)}" for record in task_run.logs[-LOG_LINES:]]
    return lines


def _failing_tasks(flow_run: FlowRunRecord | None) -> list[TaskRunRecord]:
    if flow_run is None:
        return []
    return [run for run in flow_run.all_task_runs if run.state_type in ("FAILED", "CRASHED", "CANCELLED")]


# --- lookups ----------------------------------------------------------------------------------


def _flow_record(run: Any, helper: str) -> FlowRunRecord:
    __tracebackhide__ = True
    subject = _Subject.of(run, helper)
    if isinstance(subject.record, FlowRunRecord):
        return subject.record
    raise UsageError(
        f"{helper}() needs the flow run's record to find its task runs, got {run!r}. Pass the "
        "FlowRunRecord that run_flow(...) returns (or prefect_runs.last)."
    )


def _task_runs(flow_run: FlowRunRecord, task: Any, where: Where = None) -> list[TaskRunRecord]:
    __tracebackhide__ = True
    if isinstance(task, TaskRunRecord):
        return [task]
    return flow_run.tasks(task, where)


def _recorded_flow_run(flow_run_id: Any) -> FlowRunRecord | None:
    for run_log in HUB.listeners:
        try:
            return run_log.get(flow_run_id)
        except KeyError:
            continue
    return None


def _recorded_task_run(task_run_id: Any) -> TaskRunRecord | None:
    if task_run_id is None:
        return None
    for run_log in HUB.listeners:
        for task_run in run_log.task_runs:
            if task_run.id == str(task_run_id):
                return task_run
    return None


def _check_task_can_run(flow_run: FlowRunRecord, task: Any) -> None:
    """A task the flow cannot call is most likely a typo, or a test of the wrong flow."""
    __tracebackhide__ = True
    from pytest_prefect_flows._reachable import callable_task_names

    name = task_name_of(task)
    known = callable_task_names(getattr(run.flow, "fn", None) for run in [flow_run, *flow_run.subflows])
    if known and name not in known:
        raise UnknownTaskError(
            f"assert_task_not_run(): no task named {name!r} ran in flow run {flow_run.name!r}, and the "
            "flow cannot call one: neither its code nor the functions and subflows it calls name it.\n"
            f"Tasks in this run: {', '.join(flow_run.task_names) or '(none)'}\n"
            f"Tasks the flow can call: {', '.join(sorted(known))}\n"
            "If the flow gets the task at run time (a parameter, getattr), check "
            "`run.find_tasks(task) == []` instead."
        )


# --- formatting -------------------------------------------------------------------------------


def _state_text(state: State | None) -> str:
    if state is None:
        return "(no state recorded)"
    name = state.name or state.type.value
    return f"{name}({state.message!r})" if state.message else name


def _exception_text(error: BaseException | None) -> str:
    return "(none)" if error is None else f"{type(error).__name__}: {error}"


def _exc_names(exc: Any) -> str:
    classes = exc if isinstance(exc, tuple) else (exc,)
    return " or ".join(cls.__name__ for cls in classes)


def _is_exception_type(exc: Any) -> bool:
    classes = exc if isinstance(exc, tuple) else (exc,)
    return all(isinstance(cls, type) and issubclass(cls, BaseException) for cls in classes)


def _regex(pattern: Any, helper: str) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise UsageError(f"{helper}() takes a regular expression string as pattern, got {pattern!r}.")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{helper}(): {pattern!r} is not a valid regular expression ({exc}).") from None


def _level_name(number: int) -> str:
    import logging

    return logging.getLevelName(number)


def _first_difference(expected: list[str], actual: list[str]) -> str:
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            return f"position {index}: expected {want!r}, got {got!r}"
    shorter, longer = sorted((expected, actual), key=len)
    which = "expected" if longer is expected else "actual"
    return f"position {len(shorter)}: {which} goes on with {longer[len(shorter)]!r}"


def _offset(moment: Any, origin: Any) -> str:
    return f"+{(moment - origin).total_seconds():.3f}s" if origin is not None else str(moment)
