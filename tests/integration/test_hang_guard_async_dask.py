"""The hang guard ends a test stuck in an async task or on a Dask worker, and the session goes on."""

from __future__ import annotations

import pytest

ASYNC_FLOWS = """
import asyncio
import threading
from prefect import flow, task

@task
async def awaits_forever():
    await asyncio.Event().wait()

@task
async def blocks_forever_async():
    threading.Event().wait()

@flow
async def stuck_awaiting():
    return await awaits_forever()

@flow
async def stuck_blocking_the_loop():
    return await blocks_forever_async()

@flow
def small():
    return 8
"""


def test_a_stuck_async_task_ends_at_the_timeout_and_the_session_goes_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=ASYNC_FLOWS)
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from flows import small, stuck_awaiting, stuck_blocking_the_loop

        @pytest.mark.prefect(timeout=2)
        def test_1_awaiting(run_flow):
            run_flow(stuck_awaiting)

        @pytest.mark.prefect(timeout=2)
        def test_2_blocking_the_loop(run_flow):
            run_flow(stuck_blocking_the_loop)

        @pytest.mark.prefect(timeout=2)
        def test_3_called_in_the_test(run_flow):
            asyncio.run(stuck_awaiting())

        def test_4_next(run_flow):
            assert run_flow(small).result() == 8
        """
    )
    # Before, the blocked loop thread was Prefect's shared one: test 2's report and test 4 waited on it
    # forever (bounded here by the subprocess timeout).
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "-W", "default", timeout=180)
    result.assert_outcomes(failed=3, passed=1)
    result.stdout.fnmatch_lines(
        [
            "E*FlowRunTimeoutError: hang guard: flow run * (flow 'stuck-awaiting') did not finish within 2 s",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E*FlowRunTimeoutError: hang guard: flow run * (flow 'stuck-blocking-the-loop') did not finish*",
            "E*task run 'blocks_forever_async-*' was stuck in thread 'RunSyncEventLoopThread':",
            "E*in blocks_forever_async",
            "E*threading.Event().wait()",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*AbandonedThreadWarning: event loop thread 'RunSyncEventLoopThread' was still blocked when its*"]
    )


DASK_FLOWS = """
import threading
from prefect import flow, task
from prefect_dask import DaskTaskRunner

@task
def blocks_forever():
    threading.Event().wait()

CLUSTER = {"n_workers": 1, "threads_per_worker": 1, "processes": False, "dashboard_address": None}

@flow(task_runner=DaskTaskRunner(cluster_kwargs=CLUSTER))
def stuck_on_dask():
    return blocks_forever.submit().result()

@flow
def small():
    return 8
"""


def test_a_task_stuck_on_a_dask_worker_ends_at_the_timeout_and_the_session_goes_on(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("prefect_dask")
    pytester.makepyfile(flows=DASK_FLOWS)
    pytester.makepyfile(
        """
        import pytest
        from flows import small, stuck_on_dask

        @pytest.mark.prefect(timeout=3)
        def test_1_dask(run_flow):
            run_flow(stuck_on_dask)

        def test_2_next(run_flow):
            assert run_flow(small).result() == 8
        """
    )
    # Dask's own `Worker.close` gives the stuck worker thread 30 s before it shuts its executor down
    # without it: the session ends, later than the test.
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", timeout=180)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "E*FlowRunTimeoutError: hang guard: flow run * (flow 'stuck-on-dask') did not finish within 3 s",
            "E*task run 'blocks_forever-*' was stuck in thread '*Dask*':",
            "E*in blocks_forever",
        ]
    )
