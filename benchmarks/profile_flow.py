"""Where one flow run's time goes on `IsolatedBackend`: its API requests, and the client's profile.

    python benchmarks/profile_flow.py [--runs 30] [--tasks 3] [--top 15]

Runs a flow of `--tasks` tasks `--runs` times (after warm-up runs) on the isolated backend, as a
test session does (run records on, no events), and prints:

* every API request of one run, in order: method, path, status, the milliseconds the client waited
  for it and the milliseconds the server spent in the ASGI app (the medians over all runs);
* the client thread's profile (cProfile over all runs, top functions by cumulative and by own
  time). The server runs in another thread: in the client's profile its time shows as waiting.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # as benchmarks/harness.py

import httpx
from prefect import flow, task

from pytest_prefect_flows.backend import server as backend_server

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@task
def step(x: int) -> int:
    return x + 1


def make_flow(tasks: int) -> Any:
    @flow(name=f"{tasks}-tasks")
    def tasks_flow() -> int:
        return sum(step(i) for i in range(tasks))

    return tasks_flow


class RequestLog:
    """Client wait and server time of each request, per run (`start_run` opens a new run)."""

    def __init__(self) -> None:
        self.runs: list[list[dict[str, Any]]] = []
        self.server_profile = cProfile.Profile()  # the server thread's, during the measured requests
        self._server_ms: dict[tuple[str, str], list[float]] = defaultdict(list)

    def start_run(self) -> None:
        self.runs.append([])

    def client(self, method: str, path: str, status: int, ms: float) -> None:
        if self.runs:
            key = (method, _ID.sub("{id}", path))
            server = self._server_ms[key].pop(0) if self._server_ms[key] else float("nan")
            self.runs[-1].append(
                {"method": key[0], "path": key[1], "status": status, "client_ms": ms, "server_ms": server}
            )

    def server(self, method: str, path: str, ms: float) -> None:
        self._server_ms[(method, _ID.sub("{id}", path))].append(ms)


@contextlib.contextmanager
def timing_requests(log: RequestLog) -> Iterator[None]:
    """Times every request on both ends: the client's `send` and the server's ASGI app.

    The server's time is recorded when its response ends, before the client's `send` returns.
    """
    async_send = httpx.AsyncClient.send
    sync_send = httpx.Client.send
    counter_call = backend_server.WriteCounter.__call__

    async def asend(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        start = time.perf_counter()
        response = await async_send(self, request, **kwargs)
        log.client(
            request.method, request.url.path, response.status_code, (time.perf_counter() - start) * 1000
        )
        return response

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        start = time.perf_counter()
        response = sync_send(self, request, **kwargs)
        log.client(
            request.method, request.url.path, response.status_code, (time.perf_counter() - start) * 1000
        )
        return response

    async def timed_call(self: Any, scope: Any, receive: Any, send_: Any) -> None:
        profiling = bool(log.runs) and scope["type"] == "http"
        if profiling:  # the client sends one request at a time: one profiled request at a time
            log.server_profile.enable()
        start = time.perf_counter()
        try:
            await counter_call(self, scope, receive, send_)
        finally:
            if profiling:
                log.server_profile.disable()
            if scope["type"] == "http":
                log.server(scope["method"], scope["path"], (time.perf_counter() - start) * 1000)

    httpx.AsyncClient.send, httpx.Client.send = asend, send  # type: ignore[method-assign,assignment]
    backend_server.WriteCounter.__call__ = timed_call  # type: ignore[method-assign]
    try:
        yield
    finally:
        httpx.AsyncClient.send, httpx.Client.send = async_send, sync_send  # type: ignore[method-assign]
        backend_server.WriteCounter.__call__ = counter_call  # type: ignore[method-assign]


def print_requests(log: RequestLog, wall_ms: list[float]) -> None:
    counts = {len(run) for run in log.runs}
    print(
        f"flow run: median {statistics.median(wall_ms):.1f} ms over {len(wall_ms)} runs; "
        f"requests per run: {sorted(counts)}"
    )
    print()
    print("| # | request | status | client waits (ms, median) | server ASGI (ms, median) |")
    print("|---:|---|---:|---:|---:|")
    width = max(counts)
    runs = [run for run in log.runs if len(run) == width]
    for index in range(width):
        first = runs[0][index]
        client = statistics.median(run[index]["client_ms"] for run in runs)
        server = statistics.median(run[index]["server_ms"] for run in runs)
        print(
            f"| {index + 1} | `{first['method']} {first['path']}` | {first['status']} "
            f"| {client:.1f} | {server:.1f} |"
        )
    total_client = statistics.median(sum(r["client_ms"] for r in run) for run in runs)
    total_server = statistics.median(sum(r["server_ms"] for r in run) for run in runs)
    print(f"| | **all requests** | | **{total_client:.1f}** | **{total_server:.1f}** |")


def thread_cpu_ms() -> dict[str, float]:
    """CPU milliseconds used so far by each thread of this process, by thread name (Linux)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = defaultdict(float)
    for task_dir in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task_dir / "stat").read_text().rsplit(")", 1)[1].split()
            name = names.get(int(task_dir.name), "other (aiosqlite, anyio, ...)")
            used[name] += (int(fields[11]) + int(fields[12])) * 1000 / tick
    return used


def print_thread_cpu(
    before: dict[str, float], after: dict[str, float], runs: int, wall_ms: list[float]
) -> None:
    print()
    print(
        f"CPU per flow run, by thread (mean over {runs} runs without the profiler; "
        f"wall median {statistics.median(wall_ms):.1f} ms):"
    )
    print()
    print("| thread | CPU ms per run |")
    print("|---|---:|")
    total = 0.0
    for name in sorted(after, key=lambda n: before.get(n, 0.0) - after[n]):
        used = (after[name] - before.get(name, 0.0)) / runs
        total += used
        if used >= 0.05:
            print(f"| {name} | {used:.1f} |")
    print(f"| **all threads** | **{total:.1f}** |")


def print_profile(profile: cProfile.Profile, thread: str, runs: int, top: int) -> None:
    for key, title in (("cumulative", "cumulative"), ("tottime", "own time")):
        stats = pstats.Stats(profile, stream=io.StringIO())
        stats.strip_dirs()
        print()
        print(f"{thread} thread, top {top} by {title} (ms per flow run):")
        print()
        print("| function | calls/run | own ms/run | cumulative ms/run |")
        print("|---|---:|---:|---:|")
        for func, (_, ncalls, tottime, cumtime, _) in _top(stats, key, top):
            filename, line, name = func
            where = f"{Path(filename).name}:{line}({name})" if line else name
            print(
                f"| `{where}` | {ncalls / runs:.1f} "
                f"| {1000 * tottime / runs:.2f} | {1000 * cumtime / runs:.2f} |"
            )


def print_packages(profile: cProfile.Profile, thread: str, runs: int) -> None:
    """Own time summed by the package a function lives in (prefect.server apart from prefect)."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    by_package: dict[str, float] = defaultdict(float)
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[_package(filename, name)] += tottime
    print()
    print(f"{thread} thread, own time by package (ms per flow run):")
    print()
    print("| package | own ms/run |")
    print("|---|---:|")
    for package, seconds in sorted(by_package.items(), key=lambda item: -item[1])[:12]:
        print(f"| {package} | {1000 * seconds / runs:.2f} |")


def _package(filename: str, name: str) -> str:
    if filename == "~":
        return (
            "waiting (epoll, socket, locks)"
            if any(word in name for word in ("poll", "recv", "acquire", "sleep"))
            else "builtins"
        )
    parts = Path(filename).parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        if rest[0] == "prefect" and len(rest) > 2:
            return f"prefect.{rest[1]}"
        return rest[0].removesuffix(".py")
    return "stdlib" if "python3" in filename else Path(filename).name


def _top(stats: pstats.Stats, key: str, top: int) -> list[tuple[Any, Any]]:
    entries = stats.stats  # type: ignore[attr-defined]
    index = {"cumulative": 3, "tottime": 2}[key]
    ranked = sorted(entries.items(), key=lambda item: item[1][index], reverse=True)
    return ranked[:top]


def _timed(function: Any) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    import prefect

    from pytest_prefect_flows.backend import IsolatedBackend
    from pytest_prefect_flows.recording import record_runs
    from pytest_prefect_flows.runner import no_events

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    the_flow = make_flow(args.tasks)
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    log = RequestLog()
    profile = cProfile.Profile()
    wall_ms: list[float] = []
    with timing_requests(log), IsolatedBackend() as backend:
        backend.activate()
        backend.ensure_started()
        with record_runs(), no_events():
            for _ in range(args.warmup):
                the_flow()
            cpu_before = thread_cpu_ms()
            plain_ms = [_timed(the_flow) for _ in range(args.runs)]
            cpu_after = thread_cpu_ms()
            for _ in range(args.runs):
                log.start_run()
                start = time.perf_counter()
                profile.enable()
                the_flow()
                profile.disable()
                wall_ms.append((time.perf_counter() - start) * 1000)
    print(
        f"prefect {prefect.__version__}, python {sys.version.split()[0]}, "
        f"{args.tasks}-task flow, {args.runs} runs"
    )
    print(f"machine: {os.cpu_count()} cores, shared with other jobs; {load}")
    print(
        "(wall times under cProfile include its overhead: "
        "compare them with each other, not with benchmarks/harness.py)"
    )
    print()
    print_thread_cpu(cpu_before, cpu_after, args.runs, plain_ms)
    print()
    print_requests(log, wall_ms)
    print_profile(profile, "client", args.runs, args.top)
    print_profile(log.server_profile, "server", args.runs, args.top)
    print_packages(profile, "client", args.runs)
    print_packages(log.server_profile, "server", args.runs)


if __name__ == "__main__":
    main()
