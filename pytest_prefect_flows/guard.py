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
sees it (the guard's exit, pytest's call phase) it becomes `FlowRunTimeoutError`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.exceptions import FlowRunTimeoutError, UsageError

if TYPE_CHECKING:
    from pytest_prefect_flows.recording import FlowRunRecord, RunLog

# freezegun replaces `time.monotonic` in every module namespace it finds it in, not inside a tuple:
# the guard keeps measuring real time while a test freezes the clock.
_REAL_CLOCK = (time.monotonic,)
_SIGNAL = getattr(signal, "SIGURG", None)


class FlowRunInterrupted(BaseException):
    """Raised inside a stuck flow run by the hang guard; becomes `FlowRunTimeoutError` for the test."""

    summary = "hang guard: a flow run did not finish within its timeout"
    details = ""

    def __init__(self, summary: str | None = None, details: str | None = None) -> None:
        super().__init__(summary or self.summary)
        self.details = details or self.details

    def as_error(self) -> FlowRunTimeoutError:
        """The error for the test: the summary, the run's timeline and what to do."""
        return FlowRunTimeoutError(f"{self}\n{self.details}".rstrip())


def _summary(run: FlowRunRecord, timeout: float) -> str:
    return f"hang guard: flow run {run.name!r} (flow {run.flow_name!r}) did not finish within {timeout:g} s"


def _details(run: FlowRunRecord) -> str:
    return (
        f"{run.timeline()}\n"
        "The traceback shows where it was stuck. Raise the limit with "
        "@pytest.mark.prefect(timeout=...), `prefect_timeout` in the ini file or --prefect-timeout "
        "(0 turns the guard off)."
    )


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
                self._interrupt(FlowRunInterrupted(_summary(run, self.timeout), _details(run)))
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


def timeout_error_for(exc: BaseException) -> FlowRunTimeoutError | None:
    """The `FlowRunTimeoutError` for a guard interrupt that reached the test, else None."""
    return exc.as_error() if isinstance(exc, FlowRunInterrupted) else None
