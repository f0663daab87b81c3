"""Cost of a fault sweep of a 10-task flow: 20 points (before/after each task), 41 flow runs.

    python benchmarks/sweep.py [--tasks 10] [--repeat 3]

Each point is a fault run and, as the run fails, a clean rerun; with the clean run first, that is
1 + 2 * 2 * tasks flow runs. Compared, in the same process and on the same isolated backend, with
running the flow that many times plainly (no faults, no sweep): the difference is the sweep's own
cost (setup, observe, fault injection, records, comparing). Retry waits are skipped in both. The
target: the 10-task sweep under 5 s.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect import flow, task

from pytest_prefect_flows.faults import fast_retries
from pytest_prefect_flows.recording import record_runs
from pytest_prefect_flows.sweep import FaultSweep


@task
def step(db: str, number: int) -> int:
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("INSERT OR REPLACE INTO steps VALUES (?)", (number,))
    return number


def chain(tasks: int) -> object:
    @flow(name=f"chain-of-{tasks}")
    def run_chain(db: str) -> int:
        return sum(step(db, number) for number in range(tasks))

    return run_chain


def reset(db: str) -> None:
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("DROP TABLE IF EXISTS steps")
        connection.execute("CREATE TABLE steps (number INTEGER PRIMARY KEY)")


def rows(db: str) -> list[tuple[int]]:
    with closing(sqlite3.connect(db)) as connection:
        return connection.execute("SELECT number FROM steps ORDER BY number").fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from pytest_prefect_flows.backend import IsolatedBackend
    from pytest_prefect_flows.runner import no_events

    the_flow = chain(args.tasks)
    with tempfile.TemporaryDirectory() as directory, IsolatedBackend() as backend:
        db = str(Path(directory) / "steps.db")
        backend.activate()
        with no_events():
            reset(db)
            the_flow(db)  # warm up: server start, imports
            sweeps, plain = [], []
            for _ in range(args.repeat):  # interleaved, so load from elsewhere hits both alike
                started = time.perf_counter()
                report = FaultSweep()(the_flow, db, setup=lambda: reset(db), observe=lambda: rows(db))
                sweeps.append(time.perf_counter() - started)
                report.assert_recovered()
                started = time.perf_counter()
                with record_runs(), fast_retries():
                    for _ in range(report.runs):
                        reset(db)
                        the_flow(db)
                plain.append(time.perf_counter() - started)

    sweep, runs = statistics.median(sweeps), statistics.median(plain)
    print(f"fault sweep of a {args.tasks}-task flow: {len(report.points)} points, {report.runs} flow runs")
    print(f"  sweep, median of {args.repeat}:            {sweep:6.2f} s  (target < 5 s)")
    print(f"  the same number of plain runs:      {runs:6.2f} s")
    print(f"  sweep's own cost:                   {sweep - runs:+6.2f} s")


if __name__ == "__main__":
    main()
