"""Cost of watching task functions for the `direct` status (`coverage/direct.py`), Python 3.12+.

    python benchmarks/direct_watch.py [--tasks 200] [--runs 3]

Runs a flow with `--tasks` mapped task runs on the isolated backend, `--runs` times with the watch
on (the flow's task among the watched functions, as in a session with `prefect_flow_paths`) and
`--runs` times with it off. Prints the time spent inside the watch's callback against the flows'
wall time (the target: well under the 10% budget of the run records), and the median wall times.
Timings on a shared machine are noisy: read the callback share, not the wall-time difference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from records import mapped, square  # the same mapped flow as the records benchmark

from pytest_prefect_flows.backend import IsolatedBackend
from pytest_prefect_flows.coverage.direct import FunctionWatch


class TimedWatch(FunctionWatch):
    """The watch, with the time spent in its callback summed up."""

    seconds = 0.0
    calls = 0

    def _started(self, code: Any, offset: int) -> Any:
        start = time.perf_counter()
        try:
            return super()._started(code, offset)
        finally:
            TimedWatch.seconds += time.perf_counter() - start
            TimedWatch.calls += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not hasattr(sys, "monitoring"):
        sys.exit("sys.monitoring needs Python 3.12+; on 3.10/3.11 the watch is off (no cost).")
    code = square.fn.__code__
    watched = {(code.co_filename, code.co_firstlineno): "square"}
    with IsolatedBackend() as backend:
        backend.activate()
        mapped(2)  # warm up: server start, imports
        off = [_timed(args.tasks) for _ in range(args.runs)]
        on = []
        with TimedWatch(watched) as watch:
            on = [_timed(args.tasks) for _ in range(args.runs)]
        assert watch.ran == {"square"}
    print(f"{args.runs} runs of a flow with {args.tasks} task runs (a machine shared with other jobs)")
    print(f"watch callback: {TimedWatch.calls} calls, {TimedWatch.seconds * 1000:.2f} ms in all")
    print(f"callback share of the watched flows' wall time: {100 * TimedWatch.seconds / sum(on):.3f}%")
    print(f"median wall time: watch off {statistics.median(off):.3f} s, on {statistics.median(on):.3f} s")


def _timed(n: int) -> float:
    start = time.perf_counter()
    mapped(n)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
