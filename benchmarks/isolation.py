"""What `isolation="test"` (an API that holds nothing from earlier tests) costs per test.

    python benchmarks/isolation.py [--tests 60] [--backlog 300] [--native 3]

Runs `--tests` "tests" on one isolated backend, each a 3-task flow inside `isolated_test()` as the
plugin runs it, once with session isolation and once with `empty=True`, and prints the median
milliseconds per test of each, their difference, and the median time of the emptying itself
(`IsolatedBackend.empty`, what a test with `isolation="test"` pays at its start). Then the first emptying
after `--backlog` flow runs (a session-isolated suite before one isolated test), and, to compare, the
native way to an empty API per test: a new `prefect_test_harness()` (median of `--native` starts
plus one 3-task flow each, in this process).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._env import isolate_prefect

isolate_prefect()

from benchmarks._flows import three_tasks  # noqa: E402
from pytest_prefect_flows.backend import IsolatedBackend  # noqa: E402
from pytest_prefect_flows.recording import record_runs  # noqa: E402
from pytest_prefect_flows.runner import no_events  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def one_test(backend: IsolatedBackend, empty: bool) -> None:
    with backend.isolated_test(empty=empty), record_runs(), no_events():
        three_tasks()


def isolated(args: argparse.Namespace) -> dict[str, float]:
    with IsolatedBackend() as backend:
        backend.activate()
        backend.ensure_started()
        for _ in range(3):  # warm-up: Prefect's per-process first flow
            one_test(backend, empty=False)
        session: list[float] = []
        per_test: list[float] = []
        for _ in range(args.tests):  # alternated, so a change of load meets both alike
            session.append(timed(lambda: one_test(backend, empty=False)))
            per_test.append(timed(lambda: one_test(backend, empty=True)))
        emptying = []
        for _ in range(args.tests):
            one_test(backend, empty=False)
            emptying.append(timed(backend.empty))
        for _ in range(args.backlog):
            one_test(backend, empty=False)
        backlog = timed(backend.empty)
    return {
        "session_ms": median_ms(session),
        "test_ms": median_ms(per_test),
        "emptying_ms": median_ms(emptying),
        "backlog_ms": backlog * 1000,
    }


def native(args: argparse.Namespace) -> float:
    from prefect.testing.utilities import prefect_test_harness

    def harness_per_test() -> None:
        with prefect_test_harness():
            three_tasks()

    return median_ms([timed(harness_per_test) for _ in range(args.native)])


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tests", type=int, default=60)
    parser.add_argument("--backlog", type=int, default=300)
    parser.add_argument("--native", type=int, default=3, help="native harness starts (0 to skip)")
    args = parser.parse_args()
    print(f"load average before: {load_average()}")
    ours = isolated(args)
    print(f"per test, 3-task flow, session isolation: {ours['session_ms']:8.1f} ms (median of {args.tests})")
    print(f'per test, 3-task flow, isolation="test":  {ours["test_ms"]:8.1f} ms')
    print(f"  difference:                              {ours['test_ms'] - ours['session_ms']:8.1f} ms")
    print(f"  emptying the API after one test:         {ours['emptying_ms']:8.1f} ms")
    print(f"  emptying it after {args.backlog} flow runs:         {ours['backlog_ms']:8.1f} ms (once)")
    if args.native:
        try:
            theirs = native(args)
        except RuntimeError as exc:  # its server start gives up after a timeout on a loaded machine
            print(f"native: prefect_test_harness() did not start: {exc}")
        else:
            print(
                f"native: new prefect_test_harness() + the flow: {theirs:8.1f} ms (median of {args.native})"
            )
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
