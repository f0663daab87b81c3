"""The API server's SQLite calls on its event loop against aiosqlite's thread, in one process.

    python benchmarks/sqlite_calls.py [--runs 40] [--blocks 12]

Starts the isolated backend and runs a 3-task flow in `--blocks` blocks of `--runs` runs each,
switching the server's connections between the plugin's inline calls
(`_compat.run_sqlite_calls_inline`) and aiosqlite's own thread at every block, so a change of
the machine's speed meets both alike. Prints each block's median and the median of the blocks'
medians per mode, with the ratio. Both modes run the same Prefect server, requests and SQL: only
where each SQLite call runs differs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._env import isolate_prefect

isolate_prefect()

from prefect import flow, task  # noqa: E402

from pytest_prefect_flows import _compat  # noqa: E402
from pytest_prefect_flows.backend import IsolatedBackend  # noqa: E402
from pytest_prefect_flows.recording import record_runs  # noqa: E402
from pytest_prefect_flows.runner import no_events  # noqa: E402


@task
def step(x: int) -> int:
    return x + 1


@flow
def three_tasks() -> int:
    return sum(step(i) for i in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="flow runs per block")
    parser.add_argument("--blocks", type=int, default=12, help="blocks, alternating the two modes")
    args = parser.parse_args()

    made: list[Any] = []
    inline = _compat.run_sqlite_calls_inline

    def remembered(dbapi_connection: Any) -> bool:
        made.append(dbapi_connection._connection)
        return inline(dbapi_connection)

    _compat.run_sqlite_calls_inline = remembered  # type: ignore[assignment]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    medians: dict[str, list[float]] = {"inline": [], "thread": []}
    with IsolatedBackend() as backend:
        backend.activate()
        backend.ensure_started()
        with record_runs(), no_events():
            for _ in range(5):  # warm-up, and the server's connections made
                three_tasks()
            inline_calls = {id(c): vars(c)["_execute"] for c in made if "_execute" in vars(c)}
            if not inline_calls:
                sys.exit("the server's connections do not run their calls inline: nothing to compare")
            for block in range(args.blocks):
                mode = "inline" if block % 2 else "thread"
                for connection in made:
                    if mode == "inline":
                        connection._execute = inline_calls[id(connection)]
                    else:  # aiosqlite's own method again
                        vars(connection).pop("_execute", None)
                samples = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    three_tasks()
                    samples.append(time.perf_counter() - start)
                medians[mode].append(statistics.median(samples) * 1000)
                print(f"block {block + 1:2d} {mode:6s} median {medians[mode][-1]:6.1f} ms", flush=True)
    thread, on_loop = statistics.median(medians["thread"]), statistics.median(medians["inline"])
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"3-task flow, median of the blocks' medians: aiosqlite's thread {thread:.1f} ms, "
        f"calls on the server's event loop {on_loop:.1f} ms: {thread / on_loop:.2f}x"
    )


if __name__ == "__main__":
    main()
