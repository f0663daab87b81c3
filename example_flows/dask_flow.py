"""The same mapped work on a local Dask cluster (`pip install 'pytest-prefect-flows[dask]'`).

`sum_of_squares` is an ordinary flow; `on_dask()` returns it bound to a `DaskTaskRunner`. prefect-dask is
imported only there, so this module imports (and is discovered for coverage) without the extra.
The local cluster uses threads in this process (`processes=False`): cheap to start, and the tasks
still go through Dask's scheduler and workers.
"""

from __future__ import annotations

import threading
from typing import Any

from prefect import Flow, flow, get_run_logger, task


@task(name="square", retries=2, retry_delay_seconds=5)
def square(number: int) -> int:
    get_run_logger().info("square(%d) on thread %s", number, threading.current_thread().name)
    return number * number


@task(name="total")
def total(values: list[int]) -> int:
    return sum(values)


@flow(name="sum-of-squares")
def sum_of_squares(numbers: list[int]) -> int:
    """Square every number in parallel, then add them up."""
    return total(square.map(numbers))


def on_dask(n_workers: int = 1, threads_per_worker: int = 2) -> Flow[..., Any]:
    """`sum_of_squares` on a temporary local Dask cluster (threads, no subprocesses)."""
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n_workers,
            "threads_per_worker": threads_per_worker,
            "processes": False,
            "dashboard_address": None,
        }
    )
    return sum_of_squares.with_options(task_runner=runner)
