"""Failure injection and fast retries.

`FaultInjector` (the `fail_task` fixture) makes chosen task runs fail, without touching the user's
task objects: while it is active, the task engines' `call_task_fn` (`SyncTaskRunEngine` and
`AsyncTaskRunEngine` in `prefect.task_engine`, the one place every attempt of a task calls its
function, including `.submit()` and `.map()` on the thread-pool runner) first asks the active
injectors whether this attempt should fail. Works without pytest::

    with FaultInjector() as inject:
        inject("extract", times=2, exc=ConnectionError("down"))
        my_flow()

`fast_retries()` replaces the `time`/`anyio` names inside `prefect.task_engine` (task retry waits)
and `prefect.utilities.engine` (flow retry waits) with proxies whose `sleep` returns at once; the
requested delays are still recorded by the run records (`TaskRunRecord.retry_delays`,
`FlowRunRecord.retry_delays`). A flow retry is also started at once: the server answers "wait until
the scheduled time" to a flow run that proposes `Running` while `AwaitingRetry`, so the flow engines
propose that one transition with `force=True`. Nothing outside those modules is touched.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_prefect_flows.exceptions import (
    InjectedCrash,
    InjectedFault,
    InterruptTest,
    UnusedFaultError,
    UsageError,
)

_WAIT_MODULES = ("prefect.task_engine", "prefect.utilities.engine")


# Only these callers wait for a retry; any other sleep (e.g. polling a pending state) stays real.
_RETRY_WAITERS = frozenset({"wait_until_ready", "set_state_and_handle_waits"})


def _is_retry_wait() -> bool:
    return sys._getframe(2).f_code.co_name in _RETRY_WAITERS


class _InstantTime(types.ModuleType):
    """The `time` module, but a retry wait's `sleep` only records what was asked."""

    def __init__(self, real: types.ModuleType, slept: list[float]) -> None:
        super().__init__(real.__name__)
        self._real = real
        self._slept = slept

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def sleep(self, seconds: float) -> None:
        if not _is_retry_wait():
            return self._real.sleep(seconds)  # type: ignore[no-any-return]
        self._slept.append(seconds)
        return None


class _InstantAnyio(_InstantTime):
    async def sleep(self, seconds: float) -> None:  # type: ignore[override]
        if _is_retry_wait():
            self._slept.append(seconds)
            seconds = 0
        await self._real.sleep(seconds)


def _is_retry_start(engine: Any, state: Any, force: bool) -> bool:
    current = engine.state
    return not force and state.is_running() and current is not None and current.name == "AwaitingRetry"


def _start_retry_sync(original: Callable[..., Any]) -> Callable[..., Any]:
    def set_state(self: Any, state: Any, force: bool = False) -> Any:
        return original(self, state, force or _is_retry_start(self, state, force))

    return set_state


def _start_retry_async(original: Callable[..., Any]) -> Callable[..., Any]:
    async def set_state(self: Any, state: Any, force: bool = False) -> Any:
        return await original(self, state, force or _is_retry_start(self, state, force))

    return set_state


@contextlib.contextmanager
def fast_retries() -> Iterator[list[float]]:
    """Retry waits in Prefect's engines return at once; yields the list of requested sleeps."""
    import importlib

    from prefect.flow_engine import AsyncFlowRunEngine, FlowRunEngine

    slept: list[float] = []
    restore: list[tuple[Any, str, Any]] = []
    for module_name in _WAIT_MODULES:
        module = importlib.import_module(module_name)
        for name, proxy in (("time", _InstantTime), ("anyio", _InstantAnyio)):
            real = getattr(module, name, None)
            if isinstance(real, types.ModuleType) and not isinstance(real, _InstantTime):
                setattr(module, name, proxy(real, slept))
                restore.append((module, name, real))
    for engine, wrap in ((FlowRunEngine, _start_retry_sync), (AsyncFlowRunEngine, _start_retry_async)):
        restore.append((engine, "set_state", engine.__dict__["set_state"]))
        engine.set_state = wrap(engine.__dict__["set_state"])  # type: ignore[method-assign]
    try:
        yield slept
    finally:
        for target, name, real in reversed(restore):
            setattr(target, name, real)


FaultKind = Literal["before", "after", "crash"]
ExcArg = BaseException | type[BaseException] | None
WhenArg = Callable[[dict[str, Any]], bool] | None

_CALL_NAMES: dict[str, str] = {"before": "fail_task", "after": "fail_task.after", "crash": "fail_task.crash"}


@dataclass(eq=False)
class FaultSpec:
    """One injected fault: which task, before/after its body or a crash, how often, and how often it fired."""

    task_name: str
    kind: FaultKind
    times: int | None = 1
    exc: ExcArg = None
    when: WhenArg = None
    fired: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def call(self) -> str:
        """How the fault was asked for, e.g. `fail_task('extract', times=2, exc=ConnectionError)`."""
        args = [repr(self.task_name)]
        if self.times != 1:
            args.append(f"times={self.times}")
        if self.exc is not None:
            args.append(f"exc={_describe_exc(self.exc)}")
        if self.when is not None:
            args.append(f"when={getattr(self.when, '__name__', 'callable')}")
        return f"{_CALL_NAMES[self.kind]}({', '.join(args)})"

    def claim(self, task_name: str, parameters: dict[str, Any]) -> bool:
        """Whether this attempt of `task_name` is one the fault fires on; counts it if so."""
        if task_name != self.task_name or not self._matches(parameters):
            return False
        with self._lock:
            if self.times is not None and self.fired >= self.times:
                return False
            self.fired += 1
            return True

    def _matches(self, parameters: dict[str, Any]) -> bool:
        if self.when is None:
            return True
        try:
            return bool(self.when(parameters))
        except Exception as exc:
            raise UsageError(
                f"The `when=` of {self.call} raised {exc!r} for task {self.task_name!r} with the "
                f"parameters {parameters!r}; it receives the task's parameters as a dict and returns "
                "whether this attempt fails, e.g. `when=lambda p: p['x'] > 3`."
            ) from exc

    def exception(self, task_run_name: str, attempt: int) -> BaseException:
        """A fresh exception to raise in this attempt."""
        where = f"task run {task_run_name!r}, attempt {attempt}: injected by {self.call}"
        if self.kind == "crash":
            return InjectedCrash(
                f"crashed {where}. Run the flow with run_flow(flow) to get its Crashed record instead."
            )
        if self.exc is None:
            return InjectedFault(where)
        if isinstance(self.exc, BaseException):
            return copy.copy(self.exc)
        return _instantiate(self.exc, where)

    def __repr__(self) -> str:
        times = "always" if self.times is None else f"times={self.times}"
        return f"<FaultSpec {self.kind} {self.task_name!r} {times} fired={self.fired}>"


def _describe_exc(exc: BaseException | type[BaseException]) -> str:
    return exc.__name__ if isinstance(exc, type) else repr(exc)


def _instantiate(exc_type: type[BaseException], message: str) -> BaseException:
    try:
        return exc_type(message)
    except TypeError:
        return exc_type()


class _PredicateRaised(InterruptTest):
    """Carries a raising `when=`'s `UsageError` out of the task run, which crashes instead of retrying."""

    def __init__(self, error: UsageError) -> None:
        super().__init__(str(error))
        self.error = error

    def as_error(self) -> UsageError:
        return self.error


class _EngineHook:
    """Process-wide: patches the task engines once while any injector is active, and asks each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._injectors: list[FaultInjector] = []
        self._restore: list[tuple[Any, Any]] = []

    def add(self, injector: FaultInjector) -> None:
        with self._lock:
            if not self._injectors:
                self._install()
            self._injectors.append(injector)

    def remove(self, injector: FaultInjector) -> None:
        with self._lock:
            self._injectors.remove(injector)
            if not self._injectors:
                self._uninstall()

    def _install(self) -> None:
        from prefect.task_engine import AsyncTaskRunEngine, SyncTaskRunEngine

        sync_original = SyncTaskRunEngine.__dict__["call_task_fn"]
        async_original = AsyncTaskRunEngine.__dict__["call_task_fn"]
        self._restore = [(SyncTaskRunEngine, sync_original), (AsyncTaskRunEngine, async_original)]
        SyncTaskRunEngine.call_task_fn = self._wrap_sync(sync_original)  # type: ignore[method-assign]
        AsyncTaskRunEngine.call_task_fn = self._wrap_async(async_original)  # type: ignore[method-assign]

    def _uninstall(self) -> None:
        for engine, original in self._restore:
            engine.call_task_fn = original
        self._restore = []

    def _fault_for(self, engine: Any) -> FaultSpec | None:
        name = engine.task.name
        parameters = dict(engine.parameters or {})
        for injector in list(self._injectors):
            try:
                spec = injector._claim(name, parameters)
            except UsageError as error:  # the test's mistake: not a task failure to retry
                injector.errors.append(error)
                raise _PredicateRaised(error) from error
            if spec is not None:
                return spec
        return None

    def _wrap_sync(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def call_task_fn(engine: Any, transaction: Any) -> Any:
            spec = self._fault_for(engine)
            if spec is None:
                return original(engine, transaction)
            error = spec.exception(engine.task_run.name, engine.task_run.run_count)
            if spec.kind != "after":
                raise error

            def handle_success(*args: Any, **kwargs: Any) -> None:
                raise error

            with _shadowed(engine, "handle_success", handle_success):
                return original(engine, transaction)

        return call_task_fn

    def _wrap_async(self, original: Callable[..., Any]) -> Callable[..., Any]:
        async def call_task_fn(engine: Any, transaction: Any) -> Any:
            spec = self._fault_for(engine)
            if spec is None:
                return await original(engine, transaction)
            error = spec.exception(engine.task_run.name, engine.task_run.run_count)
            if spec.kind != "after":
                raise error

            async def handle_success(*args: Any, **kwargs: Any) -> None:
                raise error

            with _shadowed(engine, "handle_success", handle_success):
                return await original(engine, transaction)

        return call_task_fn


@contextlib.contextmanager
def _shadowed(engine: Any, name: str, value: Any) -> Iterator[None]:
    """Replace a method on this one engine instance (never on the class or the user's task)."""
    setattr(engine, name, value)
    try:
        yield
    finally:
        delattr(engine, name)


_HOOK = _EngineHook()


class FaultInjector:
    """Make chosen task runs fail: before the body, after it, or crash the run.

    A context manager that works without pytest; the `fail_task` fixture is one. Leaving it checks
    that every fault fired at least once (`check_unused=False` to skip) and raises `UnusedFaultError`
    naming the faults and the tasks that did run.
    """

    def __init__(self, *, check_unused: bool = True) -> None:
        self.check_unused = check_unused
        self.specs: list[FaultSpec] = []
        self.tasks_run: list[str] = []
        # usage errors found while the flow ran (a raising `when=`), raised again on leaving
        self.errors: list[UsageError] = []
        self._lock = threading.Lock()
        self._active = False

    def __call__(
        self, task: Any, *, times: int | None = 1, exc: ExcArg = None, when: WhenArg = None
    ) -> FaultSpec:
        """Raise `exc` (default `InjectedFault`) before the body on the first `times` matching attempts.

        `times=None` fails every attempt; `when=lambda params: ...` only counts attempts whose
        parameters match.
        """
        return self._add(task, "before", times, exc, when)

    def after(
        self, task: Any, *, times: int | None = 1, exc: ExcArg = None, when: WhenArg = None
    ) -> FaultSpec:
        """Let the task's body run (its side effects happen), then raise `exc` instead of returning."""
        return self._add(task, "after", times, exc, when)

    def crash(self, task: Any, *, times: int | None = 1, when: WhenArg = None) -> FaultSpec:
        """Crash the run before the task's body as a killed process would: task and flow run end `Crashed`."""
        return self._add(task, "crash", times, None, when)

    def _add(self, task: Any, kind: FaultKind, times: int | None, exc: ExcArg, when: WhenArg) -> FaultSpec:
        call = _CALL_NAMES[kind]
        spec = FaultSpec(
            _task_name(task, call), kind, _checked_times(times, call), _checked_exc(exc, call), when
        )
        if when is not None and not callable(when):
            raise UsageError(
                f"{call}(when={when!r}) takes a callable that receives the task's parameters as a dict, "
                "e.g. `when=lambda p: p['x'] > 3`."
            )
        with self._lock:
            self.specs.append(spec)
        return spec

    def _claim(self, task_name: str, parameters: dict[str, Any]) -> FaultSpec | None:
        with self._lock:
            self.tasks_run.append(task_name)
            specs = list(self.specs)
        for spec in specs:
            if spec.claim(task_name, parameters):
                return spec
        return None

    @property
    def unused(self) -> list[FaultSpec]:
        """Faults that never fired."""
        return [spec for spec in self.specs if spec.fired == 0]

    def __enter__(self) -> FaultInjector:
        if self._active:
            raise UsageError("This FaultInjector is already active; create a new one for a nested block.")
        _HOOK.add(self)
        self._active = True
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _HOOK.remove(self)
        self._active = False
        if exc_type is None and self.errors:
            raise self.errors[0]
        if exc_type is None and self.check_unused and self.unused:
            raise UnusedFaultError(self._unused_message())

    def _unused_message(self) -> str:
        ran = list(dict.fromkeys(self.tasks_run))
        lines = [f"{len(self.unused)} injected fault(s) never fired:"]
        for spec in self.unused:
            lines.append(f"  {spec.call}  {spec!r}")
            close = difflib.get_close_matches(spec.task_name, ran, n=1)
            if close and spec.task_name not in ran:
                lines.append(f"    did you mean {close[0]!r}?")
        lines.append(f"Tasks that ran: {', '.join(ran) if ran else '(none)'}")
        lines.append(
            "Check the task name and `when=`, or opt out with @pytest.mark.prefect("
            "check_unused_faults=False) (FaultInjector(check_unused=False) outside pytest)."
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<FaultInjector {self.specs!r}>"


def _task_name(task: Any, call: str) -> str:
    if isinstance(task, str):
        if not task:
            raise UsageError(f"{call}('') needs a task name or a @task object.")
        return task
    from prefect import Flow, Task

    if isinstance(task, Task):
        return task.name
    if isinstance(task, Flow):
        raise UsageError(
            f"{call}() injects faults into tasks, got the flow {task.name!r}. "
            "Pass one of its tasks (object or name) instead."
        )
    kind = f"function {getattr(task, '__name__', '?')!r}" if callable(task) else type(task).__name__
    raise UsageError(
        f"{call}() takes a @task object or a task name, got {kind}: {task!r}. "
        "Decorate the function with @task, or pass the task's name as a string."
    )


def _checked_times(times: Any, call: str) -> int | None:
    if times is None:
        return None
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise UsageError(
            f"{call}(times={times!r}): times is how many matching attempts fail, a positive integer "
            "(or None to fail every attempt)."
        )
    return times


def _checked_exc(exc: Any, call: str) -> ExcArg:
    if exc is None or isinstance(exc, BaseException):
        return exc
    if isinstance(exc, type) and issubclass(exc, BaseException):
        try:
            _instantiate(exc, "probe")
        except TypeError:
            raise UsageError(
                f"{call}(exc={exc.__name__}): the class cannot be built from a message; pass an instance, "
                f"e.g. `exc={exc.__name__}(...)`."
            ) from None
        return exc
    raise UsageError(
        f"{call}(exc={exc!r}) takes an exception instance or class, e.g. `exc=ConnectionError('down')`."
    )
