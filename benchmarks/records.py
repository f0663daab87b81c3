"""Cost of building run records for a flow with 200 mapped task runs, on the isolated backend.

    python benchmarks/records.py [--tasks 200] [--runs 3]

Measures, per flow run: the flow's wall time with recording on; the time spent inside the recording
hooks (the wrappers `record_runs()` puts around `emit_task_run_state_change_event` and
`propose_state(_sync)`, minus the engine's own function they call, plus the log handler); their ratio
(the target is under 10%); and, as a cross-check, the flow's wall time with recording off. Hook time
is summed over threads, so with the thread-pool task runner it is an upper bound.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import prefect.flow_engine
import prefect.task_engine
from prefect import flow, task

from pytest_prefect_flows.recording import RunLog, record_runs

HOOKED = [
    (prefect.task_engine, "emit_task_run_state_change_event"),
    (prefect.flow_engine, "propose_state_sync"),
    (prefect.flow_engine, "propose_state"),
]


@task
def square(x: int) -> int:
    return x * x


@flow
def mapped(n: int) -> int:
    return sum(future.result() for future in square.map(range(n)))


class Stopwatch:
    """Seconds accumulated by name, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await function(*args, **kwargs)
                finally:
                    self.add(name, time.perf_counter() - start)

            return timed_async

        @functools.wraps(function)
        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start)

        return timed_sync


class TimedRunLog(RunLog):
    """A RunLog whose log callback is timed (state callbacks are inside the timed hook wrappers)."""

    def __init__(self, watch: Stopwatch) -> None:
        super().__init__()
        self.on_log = watch.timed("log handler", super().on_log)  # type: ignore[method-assign]


@contextmanager
def timed_recording(watch: Stopwatch) -> Iterator[RunLog]:
    """`record_runs()` with the engine functions timed both inside and outside its wrappers."""
    originals = [getattr(module, name) for module, name in HOOKED]
    for module, name in HOOKED:  # inner: the engine's own function, as the wrapper calls it
        setattr(module, name, watch.timed(f"engine {name}", getattr(module, name)))
    try:
        with record_runs(TimedRunLog(watch)) as run_log:
            wrapped = [getattr(module, name) for module, name in HOOKED]
            for (module, name), function in zip(HOOKED, wrapped, strict=True):  # outer: wrapper + engine
                setattr(module, name, watch.timed(f"hooked {name}", function))
            try:
                yield run_log
            finally:
                for (module, name), function in zip(HOOKED, wrapped, strict=True):
                    setattr(module, name, function)
    finally:
        for (module, name), original in zip(HOOKED, originals, strict=True):
            setattr(module, name, original)


def hook_seconds(watch: Stopwatch) -> float:
    seconds = watch.seconds
    wrappers = sum(
        seconds.get(f"hooked {name}", 0.0) - seconds.get(f"engine {name}", 0.0) for _, name in HOOKED
    )
    return wrappers + seconds.get("log handler", 0.0)


def run_recorded(n: int) -> tuple[float, float, int]:
    watch = Stopwatch()
    with timed_recording(watch) as run_log:
        start = time.perf_counter()
        mapped(n)
        wall = time.perf_counter() - start
    record = run_log.last
    assert (record.flow_name, len(record.task_runs)) == ("mapped", n), record
    return wall, hook_seconds(watch), len(record.task_runs)


def run_unrecorded(n: int) -> float:
    start = time.perf_counter()
    mapped(n)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from pytest_prefect_flows.backend import IsolatedBackend
    from pytest_prefect_flows.runner import no_events

    with IsolatedBackend() as backend:
        backend.activate()
        with no_events():
            mapped(args.tasks)  # warm up: server start, imports
            recorded, plain = [], []
            for _ in range(args.runs):  # interleaved, so load from elsewhere hits both alike
                recorded.append(run_recorded(args.tasks))
                plain.append(run_unrecorded(args.tasks))

    assert all(count == args.tasks for _, _, count in recorded), recorded
    wall = statistics.median(run[0] for run in recorded)
    hooks = statistics.median(run[1] for run in recorded)
    without = statistics.median(plain)
    print(f"flow with {args.tasks} mapped task runs, median of {args.runs} runs each")
    print(f"  flow run, recording on:       {wall * 1000:8.1f} ms")
    print(f"  time in recording hooks:      {hooks * 1000:8.1f} ms (summed over threads)")
    print(f"  hooks / flow run time:        {hooks / wall:8.1%}  (target < 10%)")
    difference = (wall - without) / without
    print(f"  flow run, recording off:      {without * 1000:8.1f} ms (difference {difference:+.1%})")


if __name__ == "__main__":
    main()
