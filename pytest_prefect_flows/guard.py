"""Hang guard: a flow run stuck longer than its timeout fails the test with its timeline.

Works without pytest::

    with record_runs() as runs, hang_guard(5, runs):
        my_flow()        # stuck for more than 5 s: FlowRunTimeoutError with the run's timeline

A watchdog thread polls the run log. When a flow run has not finished `timeout` seconds after the
guard first saw it, the watchdog interrupts the thread that entered the guard:

* the main thread gets a signal (`SIGURG`, ignored by default, so a late one is harmless) whose
  handler raises: blocking calls such as `time.sleep`, lock waits and socket reads return early
  (EINTR) and the handler runs at once;
* another thread gets the exception through `PyThreadState_SetAsyncExc`, at its next bytecode.

The exception raised there, `FlowRunInterrupted`, is a `BaseException`: neither task/flow retries
nor `except Exception` in flow code swallow it, and Prefect marks the run `Crashed`. Where the test
sees it (the guard's exit, pytest's call phase) it becomes `FlowRunTimeoutError`, which names the
runs that were stuck in other threads (submitted and mapped task runs) with where each one was.

A thread cannot be stopped from outside while it waits in C (a `sleep`, a lock, a socket), so
`abandoned_workers()` keeps the test from waiting for one: when a flow run is interrupted (by the
guard, pytest-timeout's signal, Ctrl-C), the thread-pool task runner's exit leaves its busy worker
threads running instead of joining them, warns with their names (`AbandonedThreadWarning`), and the
interpreter's exit does not wait for them either. An async task that blocks Prefect's shared
run-sync event loop thread is handled the same way: that loop is left behind and Prefect starts a
new one for the next flow run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.exceptions import (
    AbandonedThreadWarning,
    FlowRunTimeoutError,
    InterruptTest,
    UsageError,
)

if TYPE_CHECKING:
    from pytest_prefect_flows.recording import FlowRunRecord, RunLog, _RunRecord

# freezegun replaces `time.monotonic` in every module namespace it finds it in, not inside a tuple:
# the guard keeps measuring real time while a test freezes the clock.
_REAL_CLOCK = (time.monotonic,)
_SIGNAL = getattr(signal, "SIGURG", None)


class FlowRunInterrupted(InterruptTest):
    """Raised inside a stuck flow run by the hang guard; becomes `FlowRunTimeoutError` for the test."""

    summary = "hang guard: a flow run did not finish within its timeout"
    details = ""

    def __init__(self, summary: str | None = None, details: str | None = None) -> None:
        super().__init__(summary or self.summary)
        self.details = details or self.details

    def as_error(self) -> FlowRunTimeoutError:
        """The error for the test: the summary, the run's timeline and what to do.

        Called where the test sees the interrupt, before its report is made: an async task still
        blocking Prefect's shared event loop thread would block the report and every later test.
        """
        _release_stuck_event_loop(self)
        return FlowRunTimeoutError(f"{self}\n{self.details}".rstrip())


def _summary(run: FlowRunRecord, timeout: float) -> str:
    return f"hang guard: flow run {run.name!r} (flow {run.flow_name!r}) did not finish within {timeout:g} s"


def _details(run: FlowRunRecord, test_thread: int | None) -> str:
    elsewhere = _stuck_elsewhere(run, test_thread)
    return (
        f"{run.timeline()}\n{elsewhere}"
        f"The traceback shows where {'the flow' if elsewhere else 'it'} was stuck. Raise the limit with "
        "@pytest.mark.prefect(timeout=...), `prefect_timeout` in the ini file or --prefect-timeout "
        "(0 turns the guard off)."
    )


def _unfinished_runs(run: FlowRunRecord) -> list[_RunRecord]:
    runs: list[_RunRecord] = [task_run for task_run in run.task_runs if task_run.ended is None]
    for subflow in run.subflows:
        if subflow.ended is None:
            runs += [subflow, *_unfinished_runs(subflow)]
    return runs


def _stuck_elsewhere(run: FlowRunRecord, test_thread: int | None) -> str:
    """Where the unfinished runs of `run` that are not in the test's thread are stuck, with stacks."""
    frames = sys._current_frames()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    lines = []
    for stuck in _unfinished_runs(run):
        frame = frames.get(stuck.thread or -1)
        if stuck.thread == test_thread or frame is None:
            continue
        kind = "task run" if hasattr(stuck, "task_name") else "subflow run"
        lines.append(f"{kind} {stuck.name!r} was stuck in thread {names.get(stuck.thread, '?')!r}:")
        lines += [line.rstrip() for line in traceback.format_stack(frame)[-6:]]
    return "\n".join(lines) + "\n" if lines else ""


class _Watchdog:
    def __init__(self, timeout: float, run_log: RunLog, interval: float | None = None) -> None:
        self.timeout = timeout
        self.run_log = run_log
        self.interval = interval or min(0.1, timeout / 4)
        self.target = threading.current_thread()
        self.fired: FlowRunInterrupted | None = None
        self._first_seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._active = True
        self._delivered = threading.Event()
        self._previous_handler: Any = None
        self._thread = threading.Thread(target=self._watch, name="prefect-flows-hang-guard", daemon=True)

    @property
    def _uses_signal(self) -> bool:
        return _SIGNAL is not None and self.target is threading.main_thread()

    def start(self) -> None:
        if self._uses_signal:
            self._previous_handler = signal.signal(_SIGNAL, self._on_signal)  # type: ignore[arg-type]
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._active = False
        self._stop.set()
        self._thread.join()
        if self._uses_signal:
            if self.fired is not None:  # let a signal already on its way arrive while handled
                self._delivered.wait(1.0)
            signal.signal(_SIGNAL, self._previous_handler)  # type: ignore[arg-type]

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            run = self._stuck_run()
            if run is not None:
                details = _details(run, self.target.ident)
                self._interrupt(FlowRunInterrupted(_summary(run, self.timeout), details))
                return

    def _stuck_run(self) -> FlowRunRecord | None:
        now = _REAL_CLOCK[0]()
        stuck = None
        for run in self.run_log.flow_runs:
            if not run.history or run.ended is not None:
                self._first_seen.pop(run.id, None)
                continue
            first_seen = self._first_seen.setdefault(run.id, now)
            if stuck is None and now - first_seen > self.timeout:
                stuck = run  # the first started: a parent before its subflows
        return stuck

    def _interrupt(self, error: FlowRunInterrupted) -> None:
        with self._lock:
            if not self._active:
                return
            self.fired = error
            if self._uses_signal:
                signal.pthread_kill(self.target.ident or 0, _SIGNAL)  # type: ignore[arg-type]
            else:
                _raise_in_thread(self.target, error)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True
        self._delivered.set()
        if self.fired is not None and self._active:
            raise self.fired
        if callable(self._previous_handler):
            self._previous_handler(signum, frame)


def _raise_in_thread(thread: threading.Thread, error: FlowRunInterrupted) -> None:
    """Raise `error`'s class (with its message) in `thread` at its next bytecode."""
    import ctypes

    attributes = {"summary": str(error), "details": error.details}
    interrupt = type("FlowRunInterrupted", (FlowRunInterrupted,), attributes)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident or 0), ctypes.py_object(interrupt))


def _validated(timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError(
            f"hang_guard(timeout={timeout!r}): the timeout is a positive number of seconds, "
            "e.g. @pytest.mark.prefect(timeout=30); leave it unset (or 0 in the ini file) for no guard."
        )
    return float(timeout)


@contextlib.contextmanager
def hang_guard(timeout: float, run_log: RunLog) -> Iterator[None]:
    """Fail a flow run of `run_log` that runs longer than `timeout` seconds, with its timeline.

    The block raises `FlowRunTimeoutError` (chained to where the run was stuck) instead of hanging.
    """
    watchdog = _Watchdog(_validated(timeout), run_log)
    watchdog.start()
    try:
        yield
    except FlowRunInterrupted as interrupted:
        raise interrupted.as_error() from interrupted
    finally:
        watchdog.stop()


# How long the task runner's exit gives its busy workers to finish once the flow run was interrupted.
_WORKER_GRACE = 1.0
_abandoned: list[threading.Thread] = []


def _no_wait(timeout: float | None = None) -> None:
    """`join` of an abandoned thread: whoever joins it (the executor, the interpreter's exit) goes on."""


def abandon(thread: threading.Thread) -> None:
    """Nobody waits for `thread` any more: not its executor's shutdown, nor the interpreter's exit."""
    thread.join = _no_wait  # type: ignore[method-assign]
    from pytest_prefect_flows._compat import forget_thread_at_exit

    if not forget_thread_at_exit(thread) and not _abandoned:
        threading._register_atexit(_exit_if_still_stuck)  # type: ignore[attr-defined]
    _abandoned.append(thread)


_exit_status = [1]


def set_exit_status(status: int) -> None:
    """The status the process ends with if an abandoned thread is still stuck when it exits."""
    _exit_status[0] = status


def _exit_if_still_stuck() -> None:
    """Python 3.13+ wait at exit for every non-daemon thread: end the process instead of hanging."""
    if any(thread.is_alive() for thread in _abandoned):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[0])


def _abandon_busy_workers(runner: Any, reason: BaseException) -> None:
    from pytest_prefect_flows._compat import stop_thread_pool_runner

    workers = stop_thread_pool_runner(runner)
    deadline = _REAL_CLOCK[0]() + _WORKER_GRACE
    busy = []
    for thread in workers:
        thread.join(max(deadline - _REAL_CLOCK[0](), 0))
        if thread.is_alive():
            busy.append(thread)
    for thread in busy:
        abandon(thread)
        _warn_abandoned(
            thread,
            f"worker thread {thread.name!r} was still busy",
            f"{type(reason).__name__}: {reason}",
            "it is left running in the background, not waited for",
            stacklevel=3,
        )


def _warn_abandoned(thread: threading.Thread, what: str, reason: str, fate: str, stacklevel: int) -> None:
    """An `AbandonedThreadWarning`: what was left behind, why, its fate and where it was."""
    frame = sys._current_frames().get(thread.ident or -1)
    stack = "".join(traceback.format_stack(frame)[-3:]) if frame is not None else ""
    warnings.warn(
        AbandonedThreadWarning(
            f"{what} when its flow run was interrupted ({reason}); {fate}. It was at:\n{stack}"
        ),
        stacklevel=stacklevel,
    )


@contextlib.contextmanager
def abandoned_workers() -> Iterator[None]:
    """While active, a thread-pool task runner left by an interrupt does not wait for busy workers."""
    from pytest_prefect_flows._compat import on_thread_pool_runner_exit

    def before_exit(runner: Any, exc: BaseException | None) -> None:
        if exc is not None and not isinstance(exc, Exception):
            _abandon_busy_workers(runner, exc)

    with on_thread_pool_runner_exit(before_exit):
        yield


def _release_stuck_event_loop(reason: BaseException) -> None:
    """An async task blocking Prefect's shared run-sync loop must not block the next tests' flows."""
    from pytest_prefect_flows._compat import release_stuck_run_sync_loop

    thread = release_stuck_run_sync_loop(_WORKER_GRACE)
    if thread is None:
        return
    _warn_abandoned(
        thread,
        f"event loop thread {thread.name!r} was still blocked",
        f"{type(reason).__name__}: {str(reason).splitlines()[0] if str(reason) else ''}",
        "it is left blocked in the background and later flow runs use a new one",
        stacklevel=5,
    )
