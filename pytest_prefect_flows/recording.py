"""Client-side records of every flow run and task run, built from what the engine emits.

The task engine reports every task-run state through `emit_task_run_state_change_event`; the flow
engine proposes every flow-run state through `propose_state(_sync)`. `record_runs()` wraps those two
names in `prefect.task_engine` / `prefect.flow_engine` (nowhere else), so records do not depend on
the server's task-run recorder and are the same with the isolated backend and with `server:<URL>`.

Works without pytest::

    with record_runs() as runs:
        my_flow()
    assert runs.last.task("extract").attempts == 2
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import math
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.exceptions import AmbiguousTaskError, UnknownTaskError, UsageError

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

    from pytest_prefect_flows.artifacts import ArtifactRecord

# Picks runs of a task: an index (start order), parameters a run must have, or a predicate.
Where = int | Mapping[str, Any] | Callable[["TaskRunRecord"], bool] | None

TERMINAL_TYPES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
_FAILED_TYPES = frozenset({"FAILED", "CRASHED"})

# The flow run that is running in this context, so a flow started inside it is its subflow.
_current_flow_run: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pytest_prefect_flows_current_flow_run", default=None
)


@dataclass(frozen=True, eq=False)
class _Block:
    """A `record_runs()` block as a context knows it: its name and the block around it. No reference
    to its RunLog: a thread started inside the block (Prefect's log worker) keeps the context, and
    the block's records must be freed with the block."""

    name: str
    outer: _Block | None


# The innermost `record_runs()` block this context runs in: Prefect copies the context into the
# threads and event loops that run a flow's tasks, so a run knows whose block started it.
_recording_for: contextvars.ContextVar[_Block | None] = contextvars.ContextVar(
    "pytest_prefect_flows_recording_for", default=None
)
# Threads a named `record_runs()` block (a test) started and left running, with the block's name.
_thread_origin: weakref.WeakKeyDictionary[threading.Thread, str] = weakref.WeakKeyDictionary()


@dataclass
class StateEntry:
    """One state a run passed through."""

    name: str
    type: str
    timestamp: dt.datetime
    attempt: int
    message: str | None = None


def is_test_outcome(exc: BaseException | None) -> bool:
    """Whether `exc` is one of pytest's outcomes (`pytest.fail`, `skip`, `xfail`, `exit`, pytest-timeout's
    `Failed`): an outcome for the test, never a result of the run it was raised in."""
    outcomes = sys.modules.get("_pytest.outcomes")
    return outcomes is not None and isinstance(exc, (outcomes.OutcomeException, outcomes.Exit))


def _result_of(state: State | None, raise_on_failure: bool) -> Any:
    if state is None:
        raise RuntimeError("This run has no state yet.")
    try:
        return state.result(raise_on_failure=raise_on_failure, _sync=True)  # type: ignore[call-overload]
    except TypeError as exc:  # Prefect versions without async dispatch
        if "_sync" not in str(exc):
            raise
        return state.result(raise_on_failure=raise_on_failure)


def _exception_of(state: State | None) -> BaseException | None:
    if state is None or not (state.is_failed() or state.is_crashed() or state.is_cancelled()):
        return None
    try:
        value = _result_of(state, raise_on_failure=False)
    except Exception as exc:  # the result itself could not be read
        return exc
    return value if isinstance(value, BaseException) else None


@dataclass(eq=False)
class _RunRecord:
    id: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    history: list[StateEntry] = field(default_factory=list)
    state: State | None = None
    # attempt number -> the exception that ended an attempt that was retried
    attempt_exceptions: dict[int, BaseException] = field(default_factory=dict)
    logs: list[logging.LogRecord] = field(default_factory=list)
    # the thread that ran it: a task run in its flow run's thread was called directly, not submitted
    thread: int | None = None

    @property
    def states(self) -> list[str]:
        """Names of every state the run passed through, in order."""
        return [entry.name for entry in self.history]

    @property
    def state_name(self) -> str | None:
        return self.state.name if self.state is not None else None

    @property
    def state_type(self) -> str | None:
        return self.state.type.value if self.state is not None else None

    @property
    def started(self) -> dt.datetime | None:
        running = [entry.timestamp for entry in self.history if entry.type == "RUNNING"]
        return running[0] if running else (self.history[0].timestamp if self.history else None)

    @property
    def ended(self) -> dt.datetime | None:
        if self.history and self.history[-1].type in TERMINAL_TYPES:
            return self.history[-1].timestamp
        return None

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds()

    @property
    def exception(self) -> BaseException | None:
        """The exception of a failed/crashed/cancelled run, else None."""
        return _exception_of(self.state)

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's return value; raises like Prefect when the run failed."""
        return _result_of(self.state, raise_on_failure)

    @property
    def messages(self) -> list[str]:
        """The run logger's messages of this run, in order."""
        return [record.getMessage() for record in self.logs]

    def _add(self, state: State, attempt: int) -> None:
        retried_now = state.name == "AwaitingRetry" or (
            state.name == "Retrying" and (not self.history or self.history[-1].name != "AwaitingRetry")
        )
        self.state = state
        self.history.append(
            StateEntry(
                state.name or state.type.value, state.type.value, state.timestamp, attempt, state.message
            )
        )
        if retried_now:
            # The engine proposes these inside the `except` block that caught the attempt's error.
            handled = sys.exc_info()[1]
            if handled is not None:
                self.attempt_exceptions.setdefault(attempt, handled)


@dataclass(eq=False)
class TaskRunRecord(_RunRecord):
    """What one task run did: every state, attempts, retry delays, parameters, result."""

    task_name: str = ""
    task_key: str = ""
    flow_run_id: str | None = None
    attempts: int = 0
    retry_delays: list[float] = field(default_factory=list)
    task: Any = None

    @property
    def retries(self) -> int:
        return max(self.attempts - 1, 0)

    @property
    def cached(self) -> bool:
        """Whether the result came from the cache (final state `Cached`)."""
        return self.state_name == "Cached"

    def __repr__(self) -> str:
        return (
            f"<TaskRunRecord {self.name!r} task={self.task_name!r} state={self.state_name} "
            f"attempts={self.attempts}>"
        )


@dataclass(eq=False)
class FlowRunRecord(_RunRecord):
    """What one flow run did, with its task runs, subflows and logs."""

    flow_name: str = ""
    parent_id: str | None = None
    flow: Any = None
    task_runs: list[TaskRunRecord] = field(default_factory=list)
    subflows: list[FlowRunRecord] = field(default_factory=list)
    retry_delays: list[float] = field(default_factory=list)
    # artifacts this run and its task runs created, in order (subflows' are on their records)
    artifacts: list[ArtifactRecord] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return max(sum(1 for entry in self.history if entry.type == "RUNNING"), 0)

    @property
    def hook_errors(self) -> list[BaseException]:
        """Exceptions raised by state hooks (`on_failure`, `on_completion`, ...): Prefect only logs
        them. Once looked at here, the end of the test does not report them again."""
        from pytest_prefect_flows.hooks import inspect_hook_errors

        return [failure.exception for failure in inspect_hook_errors(self.logs)]

    @property
    def all_task_runs(self) -> list[TaskRunRecord]:
        """Task runs of this flow run and of its subflows (recursively), in start order."""
        runs = list(self.task_runs)
        for subflow in self.subflows:
            runs += subflow.all_task_runs
        return sorted(runs, key=_first_timestamp)

    @property
    def task_names(self) -> list[str]:
        """Distinct task names of this run and its subflows, in start order."""
        return list(dict.fromkeys(run.task_name for run in self.all_task_runs))

    def find_tasks(self, task: Any) -> list[TaskRunRecord]:
        """Runs of a task (name or task object) here or in subflows; empty if it never ran."""
        name = task_name_of(task)
        return [run for run in self.all_task_runs if name in (run.task_name, run.name)]

    def tasks(self, name: Any, where: Where = None) -> list[TaskRunRecord]:
        """All runs of a task (by task name, or task object), e.g. mapped runs, in start order.

        Subflows' task runs count too. An unknown name raises `UnknownTaskError` listing the names.
        `where` narrows them: an index in that order picks one run, a dict the runs whose parameters
        include its items (`where={"n": 2}`), a function of a `TaskRunRecord` the runs it accepts.
        """
        __tracebackhide__ = True
        runs = self.find_tasks(name)
        if not runs:
            raise UnknownTaskError(
                f"Flow run {self.name!r} ({self.flow_name}) has no task run of {task_name_of(name)!r}.\n"
                f"Tasks in this run: {', '.join(self.task_names) or '(none)'}"
            )
        return runs if where is None else _narrowed(runs, task_name_of(name), where)

    def task(self, name: Any, where: Where = None) -> TaskRunRecord:
        """The single run of a task (or the one `where` picks, as in `.tasks()`); an error lists the
        task names if the name is unknown, the runs if more than one is left."""
        __tracebackhide__ = True
        runs = self.tasks(name, where)
        if len(runs) > 1:
            label = task_name_of(name)
            raise AmbiguousTaskError(
                f"Task {label!r} ran {len(runs)} times in flow run {self.name!r} "
                f"({', '.join(run.name for run in runs)}); name one run with `where=`: an index "
                f"(`.task({label!r}, where=0)`, start order), its parameters (`where={{...}}`) or a "
                f"function of the record. Use `.tasks({label!r})` for all of them, or pass one of "
                "those records instead of the name."
            )
        return runs[0]

    def all_logs(self) -> list[logging.LogRecord]:
        """Run-logger records of this run and its subflows, in the order they were logged."""
        records = list(self.logs)
        for subflow in self.subflows:
            records += subflow.all_logs()
        return sorted(records, key=lambda record: record.created)

    def timeline(self) -> str:
        from pytest_prefect_flows._timeline import render_timeline

        return render_timeline(self)

    def __repr__(self) -> str:
        return (
            f"<FlowRunRecord {self.name!r} flow={self.flow_name!r} state={self.state_name} "
            f"tasks={len(self.task_runs)}>"
        )


def _first_timestamp(run: _RunRecord) -> dt.datetime:
    return run.history[0].timestamp if run.history else dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def _narrowed(runs: list[TaskRunRecord], name: str, where: Where) -> list[TaskRunRecord]:
    """The runs `where` selects (see `FlowRunRecord.tasks`); none selected is an error naming them."""
    __tracebackhide__ = True
    if isinstance(where, int) and not isinstance(where, bool):
        if -len(runs) <= where < len(runs):
            return [runs[where]]
        raise UnknownTaskError(
            f"where={where}: task {name!r} ran {len(runs)} time(s) ({', '.join(r.name for r in runs)}); "
            f"pass an index from 0 to {len(runs) - 1} (start order)."
        )
    if isinstance(where, Mapping):
        wanted = dict(where)
        selected = [
            run for run in runs if all(_same(run.parameters, key, value) for key, value in wanted.items())
        ]
    elif callable(where):
        selected = [run for run in runs if where(run)]
    else:
        raise UsageError(
            f"where= takes an index, a dict of parameters or a function of a TaskRunRecord, got {where!r}."
        )
    if selected:
        return selected
    listing = "\n".join(f"  {run.name}: {run.parameters!r}" for run in runs)
    raise UnknownTaskError(
        f"No run of task {name!r} matches where={where!r}. Its runs and parameters:\n{listing}"
    )


def _same(parameters: dict[str, Any], key: str, value: Any) -> bool:
    return key in parameters and parameters[key] == value


def task_name_of(task_or_name: Any) -> str:
    """The task name for a task object or a name string."""
    if isinstance(task_or_name, str):
        return task_or_name
    name = getattr(task_or_name, "name", None)
    if isinstance(name, str):
        return name
    raise UnknownTaskError(
        f"Expected a task name or a @task object, got {task_or_name!r} "
        f'({type(task_or_name).__name__}); pass e.g. `"extract"` or the `extract` task itself.'
    )


class RunLog:
    """Every flow run and task run started inside its `record_runs()` block, in start order.

    A run started by a thread that an earlier block (an earlier test) left running is not one of
    them: it is listed in `strays` instead, with the name of the block that started the thread.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        # who started flow runs that are not this block's -> those runs
        self.strays: dict[str, list[str]] = {}
        self._block: _Block | None = None
        self._ignored: set[str] = set()
        self._lock = threading.RLock()
        self._flow_runs: dict[str, FlowRunRecord] = {}
        self._task_runs: dict[str, TaskRunRecord] = {}
        # pytest outcomes that ended a run and were not raised to the caller of a top-level flow
        # run yet: (the top-level flow run they happened in, the outcome)
        self._outcomes: list[tuple[str, BaseException]] = []

    @property
    def flow_runs(self) -> list[FlowRunRecord]:
        with self._lock:
            return list(self._flow_runs.values())

    @property
    def top_level(self) -> list[FlowRunRecord]:
        return [run for run in self.flow_runs if run.parent_id not in self._flow_runs]

    @property
    def task_runs(self) -> list[TaskRunRecord]:
        with self._lock:
            return list(self._task_runs.values())

    @property
    def last(self) -> FlowRunRecord:
        """The most recently started top-level flow run."""
        runs = self.top_level
        if not runs:
            raise LookupError("No flow run was recorded in this test yet.")
        return runs[-1]

    def get(self, flow_run_id: Any) -> FlowRunRecord:
        with self._lock:
            return self._flow_runs[str(flow_run_id)]

    def find_flow_run(self, flow_run_id: Any) -> FlowRunRecord | None:
        with self._lock:
            return self._flow_runs.get(str(flow_run_id))

    def find_task_run(self, task_run_id: Any) -> TaskRunRecord | None:
        with self._lock:
            return self._task_runs.get(str(task_run_id))

    def find(self, name: str) -> list[FlowRunRecord]:
        """Flow runs by flow name or flow-run name."""
        name = getattr(name, "name", name)
        return [run for run in self.flow_runs if name in (run.flow_name, run.name)]

    def all_logs(self) -> list[logging.LogRecord]:
        """Run-logger records of every recorded flow run, in the order they were logged."""
        records = [record for run in self.flow_runs for record in run.logs]
        return sorted(records, key=lambda record: record.created)

    def _started_elsewhere(self, parent_id: str | None) -> str | None:
        """Who started a run that is new here, if not this block: the name of the block whose
        context or thread it runs in (its thread outlived that block); None if it is ours."""
        if parent_id is not None and parent_id in self._flow_runs:
            return None
        owner = _recording_for.get()
        if owner is not None:
            inside: _Block | None = owner
            while inside is not None and inside is not self._block:
                inside = inside.outer
            return None if inside is not None else owner.name or "an earlier record_runs() block"
        return _thread_origin.get(threading.current_thread())

    def _ignores(self, run_id: str, parent_id: str | None, engine: Any = None) -> bool:
        if run_id in self._ignored:
            return True
        origin = self._started_elsewhere(parent_id)
        if origin is None:
            return False
        self._ignored.add(run_id)
        if engine is not None:
            run = f"{getattr(getattr(engine, 'flow_run', None), 'name', run_id)!r}"
            flow = getattr(getattr(engine, "flow", None), "name", "?")
            thread = threading.current_thread().name
            started_by = f"thread {thread!r}, which {origin} started and left running"
            self.strays.setdefault(started_by, []).append(f"{run} (flow {flow!r})")
        return True

    def on_flow_state(self, flow_run_id: str, state: State, engine: Any, parent_id: str | None) -> None:
        with self._lock:
            record = self._flow_runs.get(flow_run_id)
            if record is None:
                if self._ignores(flow_run_id, parent_id, engine):
                    return
                record = self._new_flow_record(flow_run_id, engine, parent_id)
            record._add(state, attempt=record.attempts + (state.type.value == "RUNNING"))
            if state.name == "AwaitingRetry":
                record.retry_delays.append(_scheduled_delay(state))
            self._note_outcome(record, state)

    def _new_flow_record(self, flow_run_id: str, engine: Any, parent_id: str | None) -> FlowRunRecord:
        flow = getattr(engine, "flow", None)
        flow_run = getattr(engine, "flow_run", None)
        record = FlowRunRecord(
            id=flow_run_id,
            name=getattr(flow_run, "name", flow_run_id),
            parameters=dict(getattr(engine, "parameters", None) or {}),
            flow_name=getattr(flow, "name", "?"),
            parent_id=parent_id,
            flow=flow,
            thread=threading.get_ident(),
        )
        initial = getattr(flow_run, "state", None)
        if initial is not None and initial.type.value in ("PENDING", "SCHEDULED"):
            record._add(initial, attempt=0)
        self._flow_runs[flow_run_id] = record
        parent = self._flow_runs.get(parent_id or "")
        if parent is not None:
            parent.subflows.append(record)
        return record

    def on_task_state(self, task_run: Any, state: State, context: Any) -> None:
        task_run_id = str(task_run.id)
        with self._lock:
            record = self._task_runs.get(task_run_id)
            if record is None:
                flow_run_id = str(task_run.flow_run_id) if task_run.flow_run_id else None
                if self._ignores(task_run_id, flow_run_id):
                    return
                record = self._new_task_record(task_run, context)
            elif record.task is None and context is not None:
                # The first state came before the task run's context existed (Prefect 3.4, 3.5).
                self._fill_from_context(record, context)
            record.name = task_run.name  # a `task_run_name` template is rendered after Pending
            record.attempts = max(record.attempts, task_run.run_count)
            record._add(state, attempt=max(task_run.run_count, 1))
            if state.name == "AwaitingRetry":
                record.retry_delays.append(_task_retry_delay(record, state))
            self._note_outcome(record, state)

    def _new_task_record(self, task_run: Any, context: Any) -> TaskRunRecord:
        record = TaskRunRecord(
            id=str(task_run.id),
            name=task_run.name,
            task_name=task_run.name.rsplit("-", 1)[0],
            task_key=task_run.task_key,
            flow_run_id=str(task_run.flow_run_id) if task_run.flow_run_id else None,
            thread=threading.get_ident(),
        )
        self._fill_from_context(record, context)
        self._task_runs[record.id] = record
        flow_record = self._flow_runs.get(record.flow_run_id or "")
        if flow_record is not None:
            flow_record.task_runs.append(record)
        return record

    @staticmethod
    def _fill_from_context(record: TaskRunRecord, context: Any) -> None:
        task = getattr(context, "task", None)
        if task is None:
            return
        record.task = task
        record.task_name = task.name
        record.parameters = dict(getattr(context, "parameters", None) or {})

    def _note_outcome(self, record: _RunRecord, state: State) -> None:
        """Keep a pytest outcome that ended a run, until it reaches the test.

        The engine reports a crashed or failed run's state inside the `except` block that caught its
        error. A top-level flow run that ends with an outcome raises it to its caller (Prefect
        re-raises what crashed a run): the outcomes of its runs have then reached the test.
        """
        if state.type.value not in _FAILED_TYPES:
            return
        outcome = sys.exc_info()[1]
        if not is_test_outcome(outcome):
            return
        root = self._root_of(record)
        if root == record.id:
            self._outcomes = [(run, pending) for run, pending in self._outcomes if run != root]
        elif all(pending is not outcome for _, pending in self._outcomes):
            self._outcomes.append((root, outcome))  # type: ignore[arg-type]

    def _root_of(self, record: _RunRecord) -> str:
        run_id = getattr(record, "flow_run_id", None) or record.id
        seen: set[str] = set()
        while run_id in self._flow_runs and run_id not in seen:
            seen.add(run_id)
            parent = self._flow_runs[run_id].parent_id
            if parent is None or parent not in self._flow_runs:
                return run_id
            run_id = parent
        return run_id

    def take_outcome(self) -> BaseException | None:
        """The first pytest outcome raised inside a run that did not reach the test (a task run's
        `pytest.fail` in a future nobody awaited, ...), forgetting them all; None if there is none."""
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
        return outcomes[0][1] if outcomes else None

    def on_log(self, record: logging.LogRecord) -> None:
        with self._lock:
            for run in self._runs_of(record):
                run.logs.append(record)

    def holds(self, record: logging.LogRecord) -> bool:
        """Whether `record` is a run-logger record of one of these runs (so in their `.logs`)."""
        with self._lock:
            return bool(self._runs_of(record))

    def _runs_of(self, record: logging.LogRecord) -> list[_RunRecord]:
        """The recorded task run and flow run a run-logger record belongs to."""
        flow_run_id = getattr(record, "flow_run_id", None)
        task_run_id = getattr(record, "task_run_id", None)
        runs: list[_RunRecord] = []
        task_record = self._task_runs.get(str(task_run_id)) if task_run_id is not None else None
        if task_record is not None:
            runs.append(task_record)
            flow_run_id = flow_run_id or task_record.flow_run_id
        flow_record = self._flow_runs.get(str(flow_run_id))
        if flow_record is not None:
            runs.append(flow_record)
        return runs

    def __repr__(self) -> str:
        return f"<RunLog flow_runs={len(self._flow_runs)} task_runs={len(self._task_runs)}>"


def _task_retry_delay(record: TaskRunRecord, state: State) -> float:
    """The delay the engine asked for, from the task's retry settings (exact); from the state's
    times (`_scheduled_delay`) only when it is random (`retry_jitter_factor`) or the task unknown."""
    from pytest_prefect_flows._compat import requested_retry_delay

    asked = requested_retry_delay(record.task, len(record.retry_delays)) if record.task is not None else None
    return asked if asked is not None else _scheduled_delay(state)


def _scheduled_delay(state: State) -> float:
    scheduled: dt.datetime | None = state.state_details.scheduled_time
    if scheduled is None:
        return 0.0
    asked_at: dt.datetime = state.timestamp
    # The engine reads the clock for the scheduled time, then again for the state's timestamp, so
    # the difference falls short of the delay it asked for by the time between the two (~µs, a few
    # ms under load): rounded up to 10 ms, the requested delay.
    return math.ceil(round(max((scheduled - asked_at).total_seconds(), 0.0), 4) * 100) / 100


class _Hub:
    """Process-wide: patches the engine once while any `RunLog` listens, and fans out to them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[RunLog] = []
        self._parents: dict[str, str | None] = {}  # flow run id -> the flow run it started in
        self._restore: list[tuple[Any, str, Any]] = []
        self._log_handler = _RunLogHandler(self)

    @property
    def listeners(self) -> list[RunLog]:
        return list(self._listeners)

    def add(self, run_log: RunLog) -> None:
        with self._lock:
            if not self._listeners:
                self._install()
            self._listeners.append(run_log)

    def remove(self, run_log: RunLog) -> None:
        with self._lock:
            self._listeners.remove(run_log)
            if not self._listeners:
                self._uninstall()

    def _install(self) -> None:
        import prefect.flow_engine
        import prefect.task_engine

        self._patch(prefect.task_engine, "emit_task_run_state_change_event", self._wrap_task_emit)
        self._patch(prefect.flow_engine, "propose_state_sync", self._wrap_propose_sync)
        self._patch(prefect.flow_engine, "propose_state", self._wrap_propose_async)
        from pytest_prefect_flows.artifacts import patch_clients

        patch_clients(self._patch, lambda: self.listeners)
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).addHandler(self._log_handler)

    def _patch(self, module: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        original = getattr(module, name)
        setattr(module, name, wrap(original))
        self._restore.append((module, name, original))

    def _uninstall(self) -> None:
        for module, name, original in reversed(self._restore):
            setattr(module, name, original)
        self._restore.clear()
        self._parents.clear()
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).removeHandler(self._log_handler)

    def _wrap_task_emit(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def emit_task_run_state_change_event(
            task_run: Any, initial_state: Any, validated_state: Any, *args: Any, **kwargs: Any
        ) -> Any:
            from prefect.context import TaskRunContext

            context = TaskRunContext.get()
            if context is not None and context.task_run.id != task_run.id:
                context = None
            for listener in self.listeners:
                listener.on_task_state(task_run, validated_state, context)
            return original(task_run, initial_state, validated_state, *args, **kwargs)

        return emit_task_run_state_change_event

    def _flow_state(self, state: Any, flow_run_id: Any, engine: Any) -> None:
        run_id = str(flow_run_id)
        with self._lock:
            if run_id not in self._parents:  # first state of this run: it runs inside the current one
                self._parents[run_id] = _current_flow_run.get()
            parent = self._parents[run_id]
        for listener in self.listeners:
            listener.on_flow_state(run_id, state, engine, parent)
        if state.type.value == "RUNNING":
            _current_flow_run.set(run_id)
        elif state.type.value in TERMINAL_TYPES and _current_flow_run.get() == run_id:
            _current_flow_run.set(parent)

    def _wrap_propose_sync(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def propose_state_sync(client: Any, state: Any, *args: Any, **kwargs: Any) -> Any:
            validated = original(client, state, *args, **kwargs)
            flow_run_id = kwargs.get("flow_run_id")
            if flow_run_id is not None:
                self._flow_state(validated, flow_run_id, _caller_self())
            return validated

        return propose_state_sync

    def _wrap_propose_async(self, original: Callable[..., Any]) -> Callable[..., Any]:
        async def propose_state(client: Any, state: Any, *args: Any, **kwargs: Any) -> Any:
            validated = await original(client, state, *args, **kwargs)
            flow_run_id = kwargs.get("flow_run_id")
            if flow_run_id is not None:
                self._flow_state(validated, flow_run_id, _caller_self())
            return validated

        return propose_state


def _caller_self() -> Any:
    """The flow engine that proposed the state: the nearest caller's `self` that has a `flow`.

    Looked up a few frames up rather than exactly one, so another wrapper around
    `propose_state(_sync)` (a fault injector, a profiler) does not hide the engine.
    """
    frame = sys._getframe(2)
    for _ in range(6):
        if frame is None:
            break
        candidate = frame.f_locals.get("self")
        if candidate is not None and hasattr(candidate, "flow"):
            return candidate
        frame = frame.f_back  # type: ignore[assignment]
    return None


class _RunLogHandler(logging.Handler):
    def __init__(self, hub: _Hub) -> None:
        super().__init__(level=logging.NOTSET)
        self._hub = hub

    def emit(self, record: logging.LogRecord) -> None:
        for listener in self._hub.listeners:
            listener.on_log(record)


HUB = _Hub()


@contextlib.contextmanager
def record_runs(run_log: RunLog | None = None) -> Iterator[RunLog]:
    """Record every flow and task run started inside the block (imports Prefect)."""
    run_log = run_log or RunLog()
    threads_before = set(threading.enumerate())
    run_log._block = block = _Block(run_log.name, _recording_for.get())
    _recording_for.set(block)
    HUB.add(run_log)
    try:
        yield run_log
    finally:
        HUB.remove(run_log)
        _recording_for.set(block.outer)
        if run_log.name:
            _note_threads_left_running(threads_before, run_log.name)


def _note_threads_left_running(threads_before: set[threading.Thread], name: str) -> None:
    """Remember which block started the threads still running after it; a pool's worker threads
    serve whoever submits work next, so they are not anyone's."""
    for thread in threading.enumerate():
        target = getattr(thread, "_target", None)
        if thread not in threads_before and getattr(target, "__module__", "") != "concurrent.futures.thread":
            _thread_origin.setdefault(thread, name)
