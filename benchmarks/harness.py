"""Native `prefect_test_harness()` against pytest-prefect-flows' `IsolatedBackend`, in one process.

    python benchmarks/harness.py [--runs 100] [--warmup 3] [--soak 500] [--subprocess-server]

Prints, for each harness: seconds until it is ready (its API answers; beyond `import prefect`),
seconds for the first flow run after that (Prefect's per-process warm-up, paid by both), median
per-flow milliseconds for a 3-task and a 30-task flow, and the ratios; then runs `--soak`
consecutive flows on the isolated backend counting client retries on 503 and "database is locked" messages.

`--subprocess-server` adds a third row: the same isolated backend with its API server in a child
process (on the other core) instead of a thread of the test process, as a prototype to compare.
The load average before and after is printed with the table: on a shared machine the figures
follow the load, the ratios less so.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._env import isolate_prefect

isolate_prefect()

import prefect  # noqa: E402  (after the environment above)

from benchmarks._flows import thirty_tasks, three_tasks  # noqa: E402
from benchmarks._logcount import counting_messages  # noqa: E402


def median_ms(fn: Callable[[], Any], runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def measure(
    harness: Callable[[], contextlib.AbstractContextManager[Any]], args: argparse.Namespace
) -> dict[str, float]:
    start = time.perf_counter()
    with harness():  # both context managers return once their API answers
        ready = time.perf_counter() - start
        start = time.perf_counter()
        three_tasks()
        first = time.perf_counter() - start
        with counting_messages() as counter:
            small = median_ms(three_tasks, args.runs, args.warmup)
            large = median_ms(thirty_tasks, args.runs, args.warmup)
    return {"startup_s": ready, "first_s": first, "three_ms": small, "thirty_ms": large, **counter.counts}


@contextlib.contextmanager
def native() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    from pytest_prefect_flows.harness import IsolatedBackend, template_database
    from pytest_prefect_flows.recording import record_runs
    from pytest_prefect_flows.runner import no_events

    template_database()  # warm template cache, as in any session after the first
    with IsolatedBackend() as backend:
        backend.activate()
        backend.ensure_started()  # in a test session this happens on the first flow's first request
        with record_runs(), no_events():
            yield


@contextlib.contextmanager
def isolated_in_subprocess() -> Iterator[None]:
    """The isolated backend's server in a child process; this process is only its client."""
    from pytest_prefect_flows.backend import RemoteBackend
    from pytest_prefect_flows.recording import record_runs
    from pytest_prefect_flows.runner import no_events

    serve = (
        "import sys\n"
        "from pytest_prefect_flows.backend import IsolatedBackend\n"
        "with IsolatedBackend(lazy=False) as backend:\n"
        "    print(backend.api_url, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    child = subprocess.Popen(
        [sys.executable, "-c", serve], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root
    )
    assert child.stdout is not None
    assert child.stdin is not None
    try:
        api_url = child.stdout.readline().strip()
        # the child's server has CSRF off, as the in-thread one: the client must not ask for tokens
        os.environ["PREFECT_CLIENT_CSRF_SUPPORT_ENABLED"] = "false"
        with RemoteBackend(api_url) as backend:
            backend.activate()
            with record_runs(), no_events():
                yield
    finally:
        os.environ.pop("PREFECT_CLIENT_CSRF_SUPPORT_ENABLED", None)
        child.stdin.close()
        child.wait(timeout=30)


def load_average() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


def soak(runs: int) -> dict[str, float]:
    with isolated(), counting_messages() as counter:
        start = time.perf_counter()
        for _ in range(runs):
            three_tasks()
        elapsed = time.perf_counter() - start
    return {"runs": runs, "seconds": elapsed, **counter.counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--soak", type=int, default=500)
    parser.add_argument(
        "--subprocess-server", action="store_true", help="also measure the server in a child process"
    )
    args = parser.parse_args()
    logging.getLogger("prefect").setLevel(logging.WARNING)  # same console cost for both

    print(f"prefect {prefect.__version__}, python {sys.version.split()[0]}, {args.runs} runs per flow")
    print(f"{os.cpu_count()} cores, shared with other jobs unless said otherwise; before: {load_average()}")
    # Ours first: it imports Prefect's server module in this process (part of its startup), which
    # the native harness would otherwise have imported for it.
    results = {"pytest-prefect-flows": measure(isolated, args)}
    if args.subprocess_server:
        results["pytest-prefect-flows, server in a subprocess"] = measure(isolated_in_subprocess, args)
    results["native prefect_test_harness"] = measure(native, args)
    print(f"after: {load_average()}")
    ours, theirs = results["pytest-prefect-flows"], results["native prefect_test_harness"]

    print()
    print(
        "| harness | ready (s) | first flow (s) | 3-task flow median (ms) | 30-task flow median (ms) "
        "| 503 retries | all client retries | db locked |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in sorted(results.items(), key=lambda item: not item[0].startswith("native")):
        print(
            f"| {name} | {row['startup_s']:.2f} | {row['first_s']:.2f} "
            f"| {row['three_ms']:.1f} | {row['thirty_ms']:.1f} "
            f"| {row['retry_503']:.0f} | {row['client_retries']:.0f} | {row['database_locked']:.0f} |"
        )
    print(
        f"| **ratio (native / ours)** | **{theirs['startup_s'] / ours['startup_s']:.1f}x** "
        f"| **{theirs['first_s'] / ours['first_s']:.1f}x** "
        f"| **{theirs['three_ms'] / ours['three_ms']:.1f}x** "
        f"| **{theirs['thirty_ms'] / ours['thirty_ms']:.1f}x** | | | |"
    )
    if args.soak:
        soaked = soak(args.soak)
        print()
        print(
            f"soak: {soaked['runs']:.0f} consecutive 3-task flow runs on the isolated backend in "
            f"{soaked['seconds']:.1f} s: {soaked['retry_503']:.0f} client retries on 503 "
            f"({soaked['client_retries']:.0f} client retries of any kind), "
            f"{soaked['database_locked']:.0f} 'database is locked' messages"
        )


if __name__ == "__main__":
    main()
