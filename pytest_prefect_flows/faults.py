"""Failure injection and fast retries.

`fast_retries()` replaces the `time`/`anyio` names inside `prefect.task_engine` (task retry waits)
and `prefect.utilities.engine` (flow retry waits) with proxies whose `sleep` returns at once; the
requested delays are still recorded by the run records (`TaskRunRecord.retry_delays`). Nothing
outside those two modules is touched.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

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


@contextlib.contextmanager
def fast_retries() -> Iterator[list[float]]:
    """Retry waits in Prefect's engines return at once; yields the list of requested sleeps."""
    import importlib

    slept: list[float] = []
    restore: list[tuple[Any, str, Any]] = []
    for module_name in _WAIT_MODULES:
        module = importlib.import_module(module_name)
        for name, proxy in (("time", _InstantTime), ("anyio", _InstantAnyio)):
            real = getattr(module, name, None)
            if isinstance(real, types.ModuleType) and not isinstance(real, _InstantTime):
                setattr(module, name, proxy(real, slept))
                restore.append((module, name, real))
    try:
        yield slept
    finally:
        for module, name, real in restore:
            setattr(module, name, real)
