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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.exceptions import UnknownTaskError

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

TERMINAL_TYPES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})

# The flow run that is running in this context, so a flow started inside it is its subflow.
_current_flow_run: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pytest_prefect_flows_current_flow_run", default=None
)


@dataclass
class StateEntry:
    """One state a run passed through."""

    name: str
    type: str
    timestamp: dt.datetime
    attempt: int
    message: str | None = None


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

    @property
    def attempts(self) -> int:
        return max(sum(1 for entry in self.history if entry.type == "RUNNING"), 0)

    @property
    def hook_errors(self) -> list[BaseException]:
        """Exceptions raised by state hooks (`on_failure`, `on_completion`, ...): Prefect only logs them."""
        return [
            record.exc_info[1]
            for record in self.logs
            if record.exc_info
            and record.exc_info[1] is not None
            and record.getMessage().startswith("An error was encountered while running hook")
        ]

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

    def tasks(self, name: Any) -> list[TaskRunRecord]:
        """All runs of a task (by task name, or task object), e.g. mapped runs, in start order.

        Subflows' task runs count too. An unknown name raises `UnknownTaskError` listing the names.
        """
        __tracebackhide__ = True
        runs = self.find_tasks(name)
        if not runs:
            raise UnknownTaskError(
                f"Flow run {self.name!r} ({self.flow_name}) has no task run of {task_name_of(name)!r}.\n"
                f"Tasks in this run: {', '.join(self.task_names) or '(none)'}"
            )
        return runs

    def task(self, name: Any) -> TaskRunRecord:
        """The single run of a task; an error lists the task names if unknown or ambiguous."""
        __tracebackhide__ = True
        runs = self.tasks(name)
        if len(runs) > 1:
            raise UnknownTaskError(
                f"Task {task_name_of(name)!r} ran {len(runs)} times in flow run {self.name!r} "
                f"({', '.join(run.name for run in runs)}); use `.tasks({task_name_of(name)!r})` "
                "for all of them, or pass one of those records instead of the name."
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
    """Every flow run and task run seen while it is listening, in start order."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._flow_runs: dict[str, FlowRunRecord] = {}
        self._task_runs: dict[str, TaskRunRecord] = {}

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

    def find(self, name: str) -> list[FlowRunRecord]:
        """Flow runs by flow name or flow-run name."""
        name = getattr(name, "name", name)
        return [run for run in self.flow_runs if name in (run.flow_name, run.name)]

    def all_logs(self) -> list[logging.LogRecord]:
        """Run-logger records of every recorded flow run, in the order they were logged."""
        records = [record for run in self.flow_runs for record in run.logs]
        return sorted(records, key=lambda record: record.created)

    def on_flow_state(self, flow_run_id: str, state: State, engine: Any, parent_id: str | None) -> None:
        with self._lock:
            record = self._flow_runs.get(flow_run_id)
            if record is None:
                record = self._new_flow_record(flow_run_id, engine, parent_id)
            record._add(state, attempt=record.attempts + (state.type.value == "RUNNING"))
            if state.name == "AwaitingRetry":
                record.retry_delays.append(_scheduled_delay(state))

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
                record = self._new_task_record(task_run, context)
            elif record.task is None and context is not None:
                # The first state came before the task run's context existed (Prefect 3.4, 3.5).
                self._fill_from_context(record, context)
            record.name = task_run.name  # a `task_run_name` template is rendered after Pending
            record.attempts = max(record.attempts, task_run.run_count)
            record._add(state, attempt=max(task_run.run_count, 1))
            if state.name == "AwaitingRetry":
                record.retry_delays.append(_task_retry_delay(record, state))

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
    HUB.add(run_log)
    try:
        yield run_log
    finally:
        HUB.remove(run_log)
