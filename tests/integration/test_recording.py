"""Run records through the real plugin: `run_flow`, direct flow calls, `prefect_runs`, `prefect_logs`."""

from __future__ import annotations

import pytest


def test_run_flow_returns_a_failed_record_instead_of_raising(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from prefect import flow

        @flow
        def sync_flow():
            raise RuntimeError("sync went wrong")

        @flow
        async def async_flow():
            raise RuntimeError("async went wrong")

        def test_sync_flow(run_flow):
            run = run_flow(sync_flow)
            assert (run.state_name, str(run.exception)) == ("Failed", "sync went wrong")

        def test_async_flow_from_a_sync_test(run_flow):
            run = run_flow(async_flow)
            assert (run.state_name, str(run.exception)) == ("Failed", "async went wrong")

        @pytest.mark.anyio
        @pytest.mark.parametrize("anyio_backend", ["asyncio"])
        async def test_async_flow_from_an_async_test(run_flow, anyio_backend):
            run = await run_flow.run_async(async_flow)
            assert (run.state_name, str(run.exception)) == ("Failed", "async went wrong")
        """
    )
    result = pytester.runpytest_subprocess("-v")

    result.assert_outcomes(passed=3)


def test_flows_called_directly_are_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        from prefect import flow, task

        @task
        def double(x):
            return 2 * x

        @flow
        def inner(x):
            return double(x)

        @flow
        def outer():
            mapped = double.map([1, 2])
            submitted = double.submit(3)
            return [f.result() for f in mapped] + [submitted.result(), inner(4)]

        @flow
        async def async_outer():
            return double(5)

        def test_sync_call_with_map_submit_and_subflow(prefect_runs):
            assert outer() == [2, 4, 6, 8]
            run = prefect_runs.last
            assert run.flow_name == "outer"
            assert sorted(t.parameters["x"] for t in run.task_runs) == [1, 2, 3]
            assert [s.flow_name for s in run.subflows] == ["inner"]
            assert [t.parameters for t in run.subflows[0].task_runs] == [{"x": 4}]

        def test_async_call(prefect_runs):
            assert asyncio.run(async_outer()) == 10
            assert prefect_runs.last.flow_name == "async-outer"
            assert prefect_runs.last.task("double").result() == 10
        """
    )
    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=2)


def test_prefect_logs_are_captured_per_run_and_reported_on_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from prefect import flow, get_run_logger, task

        @task
        def transform(rows):
            for row in rows:
                if row < 0:
                    get_run_logger().warning("skipped bad record %s", row)
            return [row for row in rows if row >= 0]

        @flow
        def clean(rows: list):
            return transform(rows)

        def test_logs_per_run(run_flow, prefect_logs):
            first = run_flow(clean, [1, -2])
            second = run_flow(clean, [-3])
            assert prefect_logs.for_run(first).at_level("WARNING").messages == ["skipped bad record -2"]
            assert prefect_logs.for_run(second).at_level("WARNING").messages == ["skipped bad record -3"]

        def test_failing_test_shows_run_logs(run_flow):
            assert run_flow(clean, [-4]).result() == [-4]
        """
    )
    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- Captured Prefect flow-run logs -*",
            "INFO     * | Beginning flow run '*' for flow 'clean'",
            "WARNING  transform-* | skipped bad record -4",
            "INFO     transform-* | Finished in state Completed()",
        ]
    )
