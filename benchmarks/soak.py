"""Soak: many flow runs in one process on `IsolatedBackend`, as a long pytest session would make.

    python benchmarks/soak.py [--runs 1000]

Each run is one "test": its own `record_runs()`, no events sent, `fast_retries()` and per-test
cleanup, like the plugin's test scope. Runs cycle through a flow that completes, one whose task
fails once and is retried, and one that fails. Prints the outcome counts, resident memory at run
100 and at the last run and the growth (target < 50 MB), HTTP 503 responses and client retries on
them, and "database is locked" messages in any log (target 0 each). Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import logging
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # no INFO lines per run on the console

import httpx
from prefect import flow, task

from benchmarks._logcount import MessageCounter, counting_messages

MEMORY_GROWTH_TARGET_MB = 50.0
_attempts: collections.Counter[int] = collections.Counter()


@task
def step(x: int) -> int:
    return x + 1


@task(retries=2, retry_delay_seconds=5)
def flaky(run: int) -> int:
    _attempts[run] += 1
    if _attempts[run] == 1:
        raise ConnectionError("first attempt fails")
    return run


@task
def broken() -> None:
    raise ValueError("always fails")


@flow
def succeeds(run: int) -> int:
    return sum(step(i) for i in range(3)) + run


@flow
def retries(run: int) -> int:
    return flaky(run)


@flow
def fails(run: int) -> None:
    step(run)
    broken()


FLOWS = (succeeds, retries, fails)
EXPECTED = {"succeeds": "Completed", "retries": "Completed", "fails": "Failed"}


@contextlib.contextmanager
def counting_problems() -> Iterator[tuple[MessageCounter, collections.Counter[int]]]:
    """Client retries and "database is locked" in the logs, and the HTTP status codes of every
    request the clients send."""
    statuses: collections.Counter[int] = collections.Counter()
    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def send(self: httpx.Client, *args: Any, **kwargs: Any) -> httpx.Response:
        response = sync_send(self, *args, **kwargs)
        statuses[response.status_code] += 1
        return response

    async def asend(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> httpx.Response:
        response = await async_send(self, *args, **kwargs)
        statuses[response.status_code] += 1
        return response

    httpx.Client.send, httpx.AsyncClient.send = send, asend  # type: ignore[method-assign]
    try:
        # Failing runs log their tracebacks at ERROR: counted, never printed.
        with counting_messages(console_level=logging.CRITICAL + 1) as counter:
            yield counter, statuses
    finally:
        httpx.Client.send, httpx.AsyncClient.send = sync_send, async_send  # type: ignore[method-assign]


def rss_mb() -> float:
    """Resident memory now (Linux /proc), else the peak so far."""
    gc.collect()
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak) / (2**20 if sys.platform == "darwin" else 2**10)


def one_test(backend: Any, run: int) -> str:
    """One flow run the way a test makes it; returns the final state name, checked."""
    from pytest_prefect_flows.faults import fast_retries
    from pytest_prefect_flows.recording import record_runs
    from pytest_prefect_flows.runner import no_events

    chosen = FLOWS[run % len(FLOWS)]
    with backend.isolated_test(), record_runs() as run_log, no_events(), fast_retries():
        state = chosen(run, return_state=True)
        record = run_log.last
    if state.name != EXPECTED[chosen.name]:
        raise AssertionError(f"run {run}: {chosen.name} ended {state.name}\n{record.timeline()}")
    if chosen is retries and record.task("flaky").attempts != 2:
        raise AssertionError(f"run {run}: flaky was not retried once\n{record.timeline()}")
    return f"{chosen.name}:{state.name}"


def main() -> int:
    from pytest_prefect_flows.backend import IsolatedBackend

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    outcomes: collections.Counter[str] = collections.Counter()
    memory: dict[int, float] = {}
    checkpoints = {min(100, args.runs), args.runs}
    with IsolatedBackend() as backend, counting_problems() as (problems, statuses):
        backend.activate()
        start = time.perf_counter()
        for run in range(1, args.runs + 1):
            outcomes[one_test(backend, run)] += 1
            if run in checkpoints:
                memory[run] = rss_mb()
        elapsed = time.perf_counter() - start
    first, last = min(checkpoints), max(checkpoints)
    growth = memory[last] - memory[first]
    print(f"soak: {args.runs} flow runs in {elapsed:.1f} s ({1000 * elapsed / args.runs:.0f} ms/run)")
    print("outcomes:", ", ".join(f"{name} x{count}" for name, count in sorted(outcomes.items())))
    print(f"RSS at run {first}: {memory[first]:.1f} MB; at run {last}: {memory[last]:.1f} MB")
    checks = [
        (f"RSS growth run {first}->{last}", growth, MEMORY_GROWTH_TARGET_MB, "MB"),
        ("HTTP 503 responses", statuses[503], 0, ""),
        ("client retries on 503", problems.counts["retry_503"], 0, ""),
        ("'database is locked' messages", problems.counts["database_locked"], 0, ""),
    ]
    failed = False
    for name, value, target, unit in checks:
        ok = value < target if unit else value == target
        failed |= not ok
        bound = f"< {target:g}" if unit else f"= {target:g}"
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {value:.1f}{unit} (target {bound}{unit})")
    print("HTTP statuses seen:", dict(sorted(statuses.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
