"""Cost of watching flow and task functions for the `direct` status (`coverage/direct.py`).

    python benchmarks/direct_watch.py [--tasks 200] [--runs 5] [--rounds 3]

Each round starts two processes that each run a flow with `--tasks` mapped task runs on the
isolated backend, `--runs` times after a warm-up: one with the watch entered before anything else
(as a session with `prefect_flow_paths` enters it at session start, so every thread the backend
and the engine start is watched), one without. The watched functions are the flow's task and a
function that never runs. Prints the median flow wall time with and without the watch, and the
time spent inside the watch (its `sys.monitoring` callback on 3.12+, its `.fn` descriptor on
3.10/3.11, warm-up included: an upper bound) as a share of the watched flows' wall time. Wall
times on a shared machine are noisy (rounds alternate on and off): read the share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_prefect_flows.coverage import direct
from pytest_prefect_flows.coverage.direct import FunctionWatch


class TimedWatch(FunctionWatch):
    """The watch, with the time spent in its callback (3.12+) or `.fn` descriptor (3.10, 3.11)."""

    seconds = 0.0
    calls = 0

    def _started(self, code: Any, offset: int) -> Any:
        return _timed_call(super()._started, code, offset)


def _timed_call(function: Any, *args: Any) -> Any:
    start = time.perf_counter()
    try:
        return function(*args)
    finally:
        TimedWatch.seconds += time.perf_counter() - start
        TimedWatch.calls += 1


class TimedFnAttribute(direct._FnAttribute):
    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return _timed_call(self.read, instance, sys._getframe(1))


direct._FnAttribute = TimedFnAttribute  # type: ignore[misc]


def never_run() -> None:
    """A watched function no flow calls: the watch stays on for the whole benchmark."""


def child(tasks: int, runs: int, watched: bool) -> None:
    """One process: the flow's wall times, with the watch on from the start or off."""
    from records import mapped, square  # the same mapped flow as the records benchmark

    from pytest_prefect_flows.backend import IsolatedBackend

    functions = {
        (code.co_filename, code.co_firstlineno): name
        for name, code in (("never_run", never_run.__code__), ("square", square.fn.__code__))
    }
    with TimedWatch(functions if watched else {}) as watch:
        with IsolatedBackend() as backend:
            backend.activate()
            mapped(2)  # warm up: server start, imports
            times = [_timed(mapped, tasks) for _ in range(runs)]
        # 3.12+ sees every start of the task's code; 3.10/3.11 only `.fn` read outside Prefect's engine.
        assert watch.ran == ({"square"} if watched and hasattr(sys, "monitoring") else set()), watch.ran
    print(json.dumps({"times": times, "callback": TimedWatch.seconds, "calls": TimedWatch.calls}))


def _timed(flow: Any, n: int) -> float:
    start = time.perf_counter()
    flow(n)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.tasks, args.runs, args.child == "on")
        return
    results: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            command = [sys.executable, __file__, "--child", mode, "--tasks", str(args.tasks)]
            out = subprocess.run([*command, "--runs", str(args.runs)], capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    off = statistics.median(t for result in results["off"] for t in result["times"])
    on = statistics.median(t for result in results["on"] for t in result["times"])
    how = "sys.monitoring" if hasattr(sys, "monitoring") else "a .fn descriptor"
    print(f"Python {sys.version.split()[0]} ({how}); {args.rounds} rounds of {args.runs} runs of a flow")
    print(f"with {args.tasks} task runs, on a machine shared with other jobs")
    difference = 100 * (on - off) / off
    print(f"median wall time: watch off {off:.3f} s, on {on:.3f} s ({difference:+.1f}%)")
    seconds = sum(result["callback"] for result in results["on"])
    calls = sum(result["calls"] for result in results["on"])
    total = sum(t for result in results["on"] for t in result["times"])
    where = "callback" if hasattr(sys, "monitoring") else ".fn descriptor"
    print(f"time in the watch's {where}: {calls} calls, {seconds * 1000:.2f} ms in all,")
    print(f"{100 * seconds / total:.3f}% of the watched flows' wall time")


if __name__ == "__main__":
    main()
