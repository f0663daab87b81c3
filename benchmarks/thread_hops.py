"""The API server's thread hops, cut and not, alternating in one process.

    python benchmarks/thread_hops.py [--cut sqlite|dependencies|both] [--runs 40] [--blocks 12]

Two hops the isolated backend's server no longer makes for each call, measured with and without:

* `sqlite`: each SQLite call of the server's connections runs on its event loop
  (`_compat.run_sqlite_calls_inline`) instead of going to aiosqlite's thread;
* `dependencies`: Prefect's plain-function FastAPI dependencies are called directly
  (`_compat.run_sync_dependencies_inline`) instead of through the thread pool.

Starts the isolated backend and runs a 3-task flow in `--blocks` blocks of `--runs` runs each,
switching the chosen cut off and on at every block, so a change of the machine's speed meets both
alike. Prints each block's median wall time and mean CPU time of the whole process (all threads:
the machine's load disturbs it less) per run, and the median of the blocks' figures each way,
with the ratios.
Both ways run the same Prefect server, requests and SQL: only where the calls run differs.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._env import isolate_prefect

isolate_prefect()

from benchmarks._flows import three_tasks  # noqa: E402
from pytest_prefect_flows import _compat  # noqa: E402
from pytest_prefect_flows.backend import IsolatedBackend, server  # noqa: E402
from pytest_prefect_flows.recording import record_runs  # noqa: E402
from pytest_prefect_flows.runner import no_events  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cut", choices=("sqlite", "dependencies", "both"), default="both")
    parser.add_argument("--runs", type=int, default=40, help="flow runs per block")
    parser.add_argument("--blocks", type=int, default=12, help="blocks, alternating with and without")
    args = parser.parse_args()

    made: list[Any] = []
    inline = _compat.run_sqlite_calls_inline

    def remembered(dbapi_connection: Any) -> bool:
        made.append(dbapi_connection._connection)
        return inline(dbapi_connection)

    _compat.run_sqlite_calls_inline = remembered  # type: ignore[assignment]
    marker = server.SYNC_DEPENDENCIES_INLINE
    unread = contextvars.ContextVar("unread", default=False)  # what nothing reads: the thread pool
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cut: {args.cut}")
    medians: dict[str, list[float]] = {"with": [], "without": []}
    cpu: dict[str, list[float]] = {"with": [], "without": []}
    with IsolatedBackend() as backend:
        backend.activate()
        backend.ensure_started()
        with record_runs(), no_events():
            for _ in range(5):  # warm-up, and the server's connections made
                three_tasks()
            inline_calls = {id(c): vars(c)["_execute"] for c in made if "_execute" in vars(c)}
            if not inline_calls or not _compat.run_sync_dependencies_inline():
                sys.exit("the server does not make these cuts here: nothing to compare")
            for block in range(args.blocks):
                way = "with" if block % 2 else "without"
                cut = way == "with"
                if args.cut in ("sqlite", "both"):
                    for connection in made:
                        if cut:
                            connection._execute = inline_calls[id(connection)]
                        else:  # aiosqlite's own method again
                            vars(connection).pop("_execute", None)
                if args.cut in ("dependencies", "both"):
                    server.SYNC_DEPENDENCIES_INLINE = marker if cut else unread  # type: ignore[assignment]
                samples = []
                cpu_start = time.process_time()
                for _ in range(args.runs):
                    start = time.perf_counter()
                    three_tasks()
                    samples.append(time.perf_counter() - start)
                cpu[way].append((time.process_time() - cpu_start) / args.runs * 1000)
                medians[way].append(statistics.median(samples) * 1000)
                print(
                    f"block {block + 1:2d} {way:7s} the cut: median {medians[way][-1]:6.1f} ms, "
                    f"CPU of the process {cpu[way][-1]:6.1f} ms a run",
                    flush=True,
                )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for figure, values in (("wall, median", medians), ("CPU of the process (all threads)", cpu)):
        without, with_cut = statistics.median(values["without"]), statistics.median(values["with"])
        print(
            f"3-task flow, {figure}, median of the blocks: without the cut ({args.cut}) {without:.1f} ms, "
            f"with it {with_cut:.1f} ms: {without / with_cut:.2f}x"
        )


if __name__ == "__main__":
    main()
