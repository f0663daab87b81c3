"""Who sees frozen time under `PrefectClock`: the caller decides, not freezegun's defaults.

freezegun freezes `datetime.now()` for every caller, and `time.monotonic()` / `time.perf_counter()`
for every caller outside its `ignore=` list. Under a frozen clock that stops the engine's own
clock: state timestamps, log times, timelines and report durations all read 0, and so does
`time.perf_counter()` in the test. While a `PrefectClock` is frozen, `install(engine_modules)`
replaces freezegun's decisions with these rules, looked up at the first frame outside freezegun:

* a caller in an engine module (Prefect, this plugin, anyio, httpx, logging, threading, ...) reads
  real time, for every clock;
* other code reads frozen wall-clock time (`datetime.now()`, `date.today()`, `time.time()`, ...);
* `time.monotonic()` / `time.perf_counter()` are frozen only for code running inside a flow or task
  run (flow and task code), so a poll loop's deadline moves with `tick()` and `skip_sleeps()`,
  while the test's own timing stays real;
* an event emitted by other code (`emit_event(...)` called from the test, a flow or a task, without
  `occurred`) is stamped with the frozen time that code sees, although Prefect reads the clock for
  it; the engine's own events keep real time.

`SleepSkipper` makes `time.sleep`, `asyncio.sleep` and `anyio.sleep` called by flow and task code
advance the frozen clock instead of waiting; engine sleeps stay real.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import freezegun.api

from pytest_prefect_flows._compat import emit_event_clock
from pytest_prefect_flows._context import in_flow_or_task_run

_MONOTONIC_FAKES = frozenset(
    {"fake_monotonic", "fake_perf_counter", "fake_monotonic_ns", "fake_perf_counter_ns"}
)
_FREEZEGUN = "freezegun."
# The standard library's own time calls (logging's record times, threading's and queue's waits)
# are the engine's: user code reads time through them only via `datetime`/`time` themselves.
_STDLIB = frozenset(sys.stdlib_module_names) - {"__main__"}
_REAL_DATETIME = freezegun.api.real_datetime


def _real_utcnow() -> dt.datetime:
    return _REAL_DATETIME.now(dt.timezone.utc).replace(tzinfo=None)


class ClockPolicy:
    """Installs the caller rules on freezegun while a clock is frozen; `uninstall()` restores it."""

    def __init__(self, engine_modules: tuple[str, ...], frozen_now: Callable[[], dt.datetime]) -> None:
        """`frozen_now()`: the frozen instant, timezone-aware (stamped on events user code emits)."""
        self.engine_modules = engine_modules
        self._frozen_now = frozen_now
        self._saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        api = freezegun.api
        self._replace(api, "_should_use_real_time", self._should_use_real_time)
        self._replace(
            api.FakeDatetime, "now", self._real_for_engine(api.FakeDatetime.now, _REAL_DATETIME.now)
        )
        self._replace(
            api.FakeDatetime, "utcnow", self._real_for_engine(api.FakeDatetime.utcnow, _real_utcnow)
        )
        self._replace(api.FakeDate, "today", self._real_for_engine(api.FakeDate.today, api.real_date.today))
        owner, name, emit_event_code = emit_event_clock()
        self._replace(owner, name, self._frozen_for_user_events(vars(owner)[name], emit_event_code))

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def _replace(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, vars(owner)[name]))
        setattr(owner, name, value)

    def is_engine(self, frame: FrameType | None) -> bool:
        """Whether the code of `frame` is the engine's: an engine module or the standard library."""
        return self.is_engine_module(_module_of(frame))

    def is_engine_module(self, module: str) -> bool:
        return module.startswith(self.engine_modules) or module.partition(".")[0] in _STDLIB

    def _should_use_real_time(self) -> bool:
        fake = sys._getframe(1)
        if self.is_engine(_first_outside_freezegun(fake)):
            return True
        if fake.f_code.co_name in _MONOTONIC_FAKES:
            return not in_flow_or_task_run()
        return False

    def _real_for_engine(self, frozen: Any, real: Callable[..., Any]) -> Any:
        """A classmethod: `real(...)` for engine callers, freezegun's `frozen(...)` for the others."""

        def read(cls: Any, *args: Any, **kwargs: Any) -> Any:
            if self.is_engine(_first_outside_freezegun(sys._getframe(1))):
                return real(*args, **kwargs)
            return frozen(*args, **kwargs)

        return classmethod(read)

    def _frozen_for_user_events(self, prefect_now: Callable[..., Any], emit_event_code: Any) -> Any:
        """Prefect's `now()`: the frozen time when `emit_event` asks for it on behalf of user code.

        `emit_event` stamps `occurred` with Prefect's `now()`, an engine call that reads real time
        (and on Python 3.13+ reads a clock freezegun does not patch). The event is the caller's,
        though: emitted by the test, a flow or a task, it carries the time that code sees.
        """

        def now(tz: Any = "UTC") -> Any:
            caller = sys._getframe(1)
            if caller.f_code is emit_event_code and not self.is_engine(caller.f_back):
                return self._frozen_now().astimezone(_zone(tz))
            return prefect_now(tz)

        return now


def _zone(tz: Any) -> dt.tzinfo:
    if isinstance(tz, dt.tzinfo):
        return tz
    name = str(getattr(tz, "name", tz))
    return dt.timezone.utc if name.upper() == "UTC" else ZoneInfo(name)


def _module_of(frame: FrameType | None) -> str:
    return str(frame.f_globals.get("__name__", "")) if frame is not None else ""


def _first_outside_freezegun(frame: FrameType | None) -> FrameType | None:
    while frame is not None and _module_of(frame).startswith(_FREEZEGUN):
        frame = frame.f_back
    return frame


class SleepSkipper:
    """While active, sleeps called by flow and task code advance the clock instead of waiting.

    `time.sleep`, `asyncio.sleep` and `anyio.sleep` are replaced on their modules and in every
    loaded module outside the engine that imported them by name (`from time import sleep`).
    """

    def __init__(self, policy: ClockPolicy, advance: Callable[[float], object]) -> None:
        self._policy = policy
        self._advance = advance
        self._saved: list[tuple[Any, str, Any]] = []
        self.skipped: list[float] = []

    def start(self) -> None:
        import anyio

        real_time_sleep, real_asyncio_sleep, real_anyio_sleep = time.sleep, asyncio.sleep, anyio.sleep
        fakes: dict[int, Any] = {
            id(real_time_sleep): self._time_sleep(real_time_sleep),
            id(real_asyncio_sleep): self._async_sleep(real_asyncio_sleep, real_asyncio_sleep),
            id(real_anyio_sleep): self._async_sleep(real_anyio_sleep, real_asyncio_sleep),
        }
        for owner in (time, asyncio, anyio):
            self._swap(owner, "sleep", fakes)
        for name, module in list(sys.modules.items()):
            if module is None or self._policy.is_engine_module(name):
                continue
            for attribute, value in list(_module_vars(module)):
                if id(value) in fakes and callable(value):
                    self._swap(module, attribute, fakes)

    def _swap(self, owner: ModuleType, attribute: str, fakes: dict[int, Any]) -> None:
        original = getattr(owner, attribute)
        self._saved.append((owner, attribute, original))
        setattr(owner, attribute, fakes[id(original)])

    def stop(self) -> None:
        for owner, attribute, original in reversed(self._saved):
            setattr(owner, attribute, original)
        self._saved.clear()

    def _skips(self, caller: FrameType | None) -> bool:
        return not self._policy.is_engine(caller) and in_flow_or_task_run()

    def _skip(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep length must be non-negative, got {seconds!r}")
        self.skipped.append(float(seconds))
        if seconds > 0:
            self._advance(seconds)

    def _time_sleep(self, real: Callable[[float], None]) -> Callable[[float], None]:
        def sleep(seconds: float) -> None:
            if not self._skips(sys._getframe(1)):
                return real(seconds)
            self._skip(seconds)
            return None

        return sleep

    def _async_sleep(self, real: Callable[..., Any], yield_once: Callable[..., Any]) -> Callable[..., Any]:
        async def sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
            if not self._skips(sys._getframe(1)):
                return await real(delay, *args, **kwargs)
            self._skip(delay)
            await yield_once(0)  # still let other tasks run, as a real sleep would
            return args[0] if args else kwargs.get("result")

        return sleep


def _module_vars(module: ModuleType) -> list[tuple[str, Any]]:
    try:
        return list(vars(module).items())
    except TypeError:
        return []
