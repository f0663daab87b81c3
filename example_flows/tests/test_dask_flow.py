"""The mapped flow on a real (local, threaded) Dask cluster, checked with the same helpers.

Needs the `dask` extra: `pip install 'pytest-prefect-flows[dask]'`; skipped without it.
"""

from __future__ import annotations

import pytest

pytest.importorskip(
    "prefect_dask", reason="prefect-dask is not installed; pip install 'pytest-prefect-flows[dask]' to run it"
)

from example_flows.dask_flow import on_dask, sum_of_squares
from pytest_prefect_flows import assert_completed, assert_logged, assert_task_completed, assert_task_retried


@pytest.fixture(scope="module")
def dask_flow():
    return on_dask(n_workers=1, threads_per_worker=2)


def test_maps_over_dask_workers(run_flow, dask_flow):
    run = run_flow(dask_flow, [1, 2, 3, 4])

    assert_completed(run)
    assert run.result() == 30
    assert len(run.tasks("square")) == 4
    assert_task_completed(run, "square")
    assert_logged(run, r"square\(3\) on thread .*Dask-Default-Threads")  # ran on a Dask worker thread


def test_retries_work_on_dask(run_flow, fail_task, dask_flow):
    fail_task("square", times=1, exc=ConnectionError("worker lost"), when=lambda p: p["number"] == 2)

    run = run_flow(dask_flow, [1, 2, 3])

    assert_completed(run)
    assert run.result() == 14
    retried = next(t for t in run.tasks("square") if t.parameters["number"] == 2)
    assert_task_retried(run, retried, times=1)


def test_same_result_as_the_default_runner(run_flow, dask_flow):
    assert run_flow(dask_flow, [5, 6]).result() == run_flow(sum_of_squares, [5, 6]).result()
