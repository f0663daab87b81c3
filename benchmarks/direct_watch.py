"""Cost of watching flow and task functions for the `direct` status (`coverage/direct.py`).

    python benchmarks/direct_watch.py [--tasks 200] [--runs 5] [--rounds 3]

Each round starts two processes that each run a flow with `--tasks` mapped task runs on the
isolated backend, `--runs` times after a warm-up: one with the watch entered before anything else
(as a session with `prefect_flow_paths` enters it at session start, so every thread the backend
and the engine start is watched), one without. The watched functions are the flow's task and a
task that never runs, so the watch never ends early (its worst case). Prints the median flow wall
time with and without the watch and the difference as a share of the flow's wall time; on Python
3.12+ (`sys.monitoring`) also the time spent inside the watch's callback, which is the cost there.
Timings on a shared machine are noisy: rounds alternate on and off, and medians are compared.
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

from pytest_prefect_flows.coverage.direct import FunctionWatch


class TimedWatch(FunctionWatch):
    """The watch, with the time spent in its `sys.monitoring` callback summed up."""

    seconds = 0.0
    calls = 0

    def _started(self, code: Any, offset: int) -> Any:
        start = time.perf_counter()
        try:
            return super()._started(code, offset)
        finally:
            TimedWatch.seconds += time.perf_counter() - start
            TimedWatch.calls += 1


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
        assert not watched or watch.ran == {"square"}, watch.ran
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
    how = "sys.monitoring" if hasattr(sys, "monitoring") else "sys.setprofile"
    print(f"Python {sys.version.split()[0]} ({how}); {args.rounds} rounds of {args.runs} runs of a flow")
    print(f"with {args.tasks} task runs, on a machine shared with other jobs")
    print(f"median wall time: watch off {off:.3f} s, on {on:.3f} s: {100 * (on - off) / off:+.1f}% of the flow")
    if hasattr(sys, "monitoring"):
        seconds = sum(result["callback"] for result in results["on"])
        calls = sum(result["calls"] for result in results["on"])
        total = sum(t for result in results["on"] for t in result["times"])
        print(f"watch callback: {calls} calls, {seconds * 1000:.2f} ms in all, {100 * seconds / total:.3f}%")


if __name__ == "__main__":
    main()
