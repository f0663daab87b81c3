"""Per-test scope (settings, recording, fast retries) and the `run_flow` / `prefect_logs` helpers."""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows._console import plain_console_lines
from pytest_prefect_flows.exceptions import InterruptTest, UsageError
from pytest_prefect_flows.recording import FlowRunRecord, RunLog, is_test_outcome, record_runs

if TYPE_CHECKING:
    from pytest_prefect_flows._options import MarkerOptions
    from pytest_prefect_flows.backend import IsolatedBackend, RemoteBackend


@contextlib.contextmanager
def test_scope(
    backend: IsolatedBackend | RemoteBackend, options: MarkerOptions, name: str
) -> Iterator[RunLog]:
    """Everything a test that uses Prefect runs inside: isolated settings, records, fast retries.

    `name` (the test's id) names the test in a warning about a thread it left running flows."""
    backend.activate()
    backend.check()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_cleaned_up_quietly(backend, empty=options.isolation == "test"))
        stack.enter_context(_quiet_server_warnings())
        stack.enter_context(plain_console_lines())
        run_log = stack.enter_context(record_runs(RunLog(name)))
        if backend.kind == "ephemeral":
            stack.enter_context(no_events())
        else:
            from prefect import tags

            stack.enter_context(tags(backend.session_tag))  # type: ignore[union-attr]
        from pytest_prefect_flows.network import network_guard

        stack.enter_context(network_guard(block=bool(options.block_network), allowed=_backend_hosts(backend)))
        if options.fast_retries:
            from pytest_prefect_flows.faults import fast_retries

            stack.enter_context(fast_retries())
        if options.log_level is not None:
            stack.enter_context(_run_log_level(int(options.log_level)))
        from pytest_prefect_flows.guard import abandoned_workers, hang_guard

        stack.enter_context(abandoned_workers())
        if options.timeout:
            stack.enter_context(hang_guard(options.timeout, run_log))
        yield run_log


def _backend_hosts(backend: IsolatedBackend | RemoteBackend) -> list[str]:
    """The backend's host, which flow runs reach from inside a run (a `server:` backend may be remote)."""
    from urllib.parse import urlsplit

    host = urlsplit(backend.api_url).hostname if backend.kind == "server" else None
    return [host] if host else []


@contextlib.contextmanager
def _quiet_server_warnings() -> Iterator[None]:
    """The in-process API server's own warnings are not the test's business."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"prefect\.server(\..*)?$")
        warnings.filterwarnings("ignore", message=r"Type object .* does not refer to an OperatorClass")
        yield


@contextlib.contextmanager
def _cleaned_up_quietly(backend: IsolatedBackend | RemoteBackend, empty: bool = False) -> Iterator[None]:
    """The backend's per-test cleanup (deleting the variables, blocks, ... the test saved; with
    `empty`, everything earlier tests left, before the test).

    The cleanup runs after the test, when pytest's warning capture for the teardown no longer
    holds the filters set during setup: it sets them again, so the server's SQL warnings on
    those deletes are not reported against the test.
    """
    cleanup = backend.isolated_test(empty=empty)
    cleanup.__enter__()
    try:
        yield
    finally:
        with _quiet_server_warnings():
            cleanup.__exit__(None, None, None)


@contextlib.contextmanager
def no_events() -> Iterator[None]:
    """Do not send the engine's events to the isolated backend: nothing there reads them.

    Its task-run recorder and triggers are off, and the run records come from the engine's own
    calls (`recording.py`); sending events over a websocket only costs time. With Prefect's
    `NullEventsClient` as the worker's client, `emit_event` returns before building an event.
    """
    from prefect.events.clients import NullEventsClient

    from pytest_prefect_flows._compat import events_client_override

    # The worker is kept running for the next test: Prefect's loop thread keeps every stopped
    # worker (a shutdown call, an atexit hook) with the context of the flow run that started it,
    # ~100 KB per test.
    with events_client_override(NullEventsClient):
        yield


@contextlib.contextmanager
def _run_log_level(level: int) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, saved, strict=True):
            logger.setLevel(old)


def _require_flow(flow: Any) -> None:
    from prefect import Flow, Task

    if isinstance(flow, Flow):
        return
    if isinstance(flow, Task):
        raise UsageError(
            f"run_flow() takes a @flow, got the task {flow.name!r}. Call a task inside a flow, or "
            "call `task.fn(...)` to test its function directly."
        )
    kind = "function" if callable(flow) else type(flow).__name__
    raise UsageError(
        f"run_flow() takes a @flow-decorated function, got {kind} {flow!r}. "
        "Decorate it with `@flow` (from prefect import flow)."
    )


def is_for_the_test(exc: BaseException) -> bool:
    """pytest's outcomes, the hang guard's interrupt and Ctrl-C end the test, not only the run."""
    return isinstance(exc, (KeyboardInterrupt, InterruptTest)) or is_test_outcome(exc)


def raise_outcome(run_log: RunLog, record: FlowRunRecord | None = None) -> None:
    """Raise the pytest outcome that ended `record` (a `pytest.exit` fails a run instead of crashing
    it) or, failing that, one raised in a run whose error reached nobody (a task run's `pytest.fail`
    in a future never awaited). Prefect records such runs as Failed or Crashed and carries on; the
    test gets the outcome it asked for."""
    __tracebackhide__ = True
    pending = run_log.take_outcome()
    ended_by = record.exception if record is not None and record.state_type in ("FAILED", "CRASHED") else None
    outcome = ended_by if is_test_outcome(ended_by) else pending
    if outcome is not None:
        raise outcome


class RunFlow:
    """`run_flow(flow, *args, **kwargs)`: run a flow (sync or async) and return its record.

    Never raises for a failed, crashed or cancelled flow run: the record says what happened. A
    `BaseException` that crashed the run (Prefect re-raises those) is caught too, once the run's
    record holds its `Crashed` state; `KeyboardInterrupt` and pytest's own outcomes pass through.
    """

    def __init__(self, run_log: RunLog) -> None:
        self._run_log = run_log

    def __call__(self, flow: Any, *args: Any, **kwargs: Any) -> FlowRunRecord:
        _require_flow(flow)
        known = len(self._run_log.flow_runs)
        try:
            state = flow(*args, return_state=True, **kwargs)
            if inspect.iscoroutine(state):
                from prefect.utilities.asyncutils import run_coro_as_sync

                state = run_coro_as_sync(state)
        except BaseException as exc:
            return self._crashed_record(flow, known, exc)
        return self._checked(self._record_for(flow, state))

    async def run_async(self, flow: Any, *args: Any, **kwargs: Any) -> FlowRunRecord:
        """Await an async flow from an async test and return its record."""
        _require_flow(flow)
        known = len(self._run_log.flow_runs)
        try:
            state = flow(*args, return_state=True, **kwargs)
            if inspect.isawaitable(state):
                state = await state
        except BaseException as exc:
            return self._crashed_record(flow, known, exc)
        return self._checked(self._record_for(flow, state))

    def _record_for(self, flow: Any, state: Any) -> FlowRunRecord:
        flow_run_id = state.state_details.flow_run_id
        try:
            record = self._run_log.get(flow_run_id)
        except KeyError:
            raise UsageError(
                f"Flow {flow.name!r} ran (state {state.name}) but its run was not recorded; "
                "was it started in another process?"
            ) from None
        record.state = state
        return record

    def _crashed_record(self, flow: Any, known: int, exc: BaseException) -> FlowRunRecord:
        """The record of the run that `exc` ended, if the engine recorded its end; else re-raise."""
        if is_for_the_test(exc):
            self._run_log.take_outcome()
            if isinstance(exc, InterruptTest):
                raise exc.as_error() from exc
            raise exc
        started = [
            run
            for run in self._run_log.flow_runs[known:]
            if run.flow_name == flow.name and run.parent_id is None and run.ended is not None
        ]
        if not started:
            raise exc
        return self._checked(started[-1])

    def _checked(self, record: FlowRunRecord) -> FlowRunRecord:
        """`record`, unless a pytest outcome was raised in the run: then that outcome, for the test."""
        raise_outcome(self._run_log, record)
        return record

    def __repr__(self) -> str:
        return f"<RunFlow {self._run_log!r}>"


class LogView:
    """Run-logger records of the test's runs, filterable by run and level."""

    def __init__(self, run_log: RunLog, records: list[logging.LogRecord] | None = None) -> None:
        self._run_log = run_log
        self._records = records

    @property
    def records(self) -> list[logging.LogRecord]:
        return list(self._records) if self._records is not None else self._run_log.all_logs()

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]

    def for_run(self, run: Any) -> LogView:
        """Records of one flow run (record or id; its task runs included) or one task run (record)."""
        if hasattr(run, "task_name"):
            records = [r for r in self.records if str(getattr(r, "task_run_id", "")) == run.id]
        else:
            run_id = str(getattr(run, "id", run))
            records = [r for r in self.records if str(getattr(r, "flow_run_id", "")) == run_id]
        return LogView(self._run_log, records)

    def at_level(self, level: int | str) -> LogView:
        """Records at `level` (a number or a name such as "WARNING") or above."""
        number = level_number(level)
        return LogView(self._run_log, [r for r in self.records if r.levelno >= number])

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[logging.LogRecord]:
        return iter(self.records)

    def __repr__(self) -> str:
        return f"<LogView {len(self)} records>"


def level_number(level: int | str) -> int:
    """A logging level as a number, from a number or a name (any case); a clear error otherwise."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str) and isinstance(logging.getLevelName(level.upper()), int):
        return int(logging.getLevelName(level.upper()))
    raise UsageError(f'Expected a logging level such as "WARNING" or logging.WARNING, got {level!r}.')


def log_line(record: logging.LogRecord) -> str:
    """`LEVEL    run-name | message`, naming the task run when the record came from one."""
    run_name = getattr(record, "task_run_name", None) or getattr(record, "flow_run_name", None) or "?"
    return f"{record.levelname:<8} {run_name} | {record.getMessage()}"
