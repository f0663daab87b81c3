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


def test_runs_of_a_thread_an_earlier_test_left_running_are_not_the_next_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import threading
        from prefect import flow, task

        @task
        def one(x):
            return x

        @flow
        def tiny(x: int = 0):
            return one(x)

        STOP = threading.Event()
        RUNS_DONE = threading.Semaphore(0)

        def test_1_leaves_a_thread_running_flows(run_flow):
            def keep_running():
                while not STOP.is_set():
                    tiny(1)
                    RUNS_DONE.release()

            threading.Thread(target=keep_running, daemon=True, name="flow-looper").start()
            assert RUNS_DONE.acquire(timeout=60)

        def test_2_records_only_its_own_runs(run_flow, prefect_runs):
            run_flow(tiny, 2)
            for _ in range(2):  # at least one whole run of the looper during this test
                assert RUNS_DONE.acquire(timeout=60)
            STOP.set()
            assert [run.parameters for run in prefect_runs.flow_runs] == [{"x": 2}]
            assert [run.parameters for run in prefect_runs.task_runs] == [{"x": 2}]

        def test_3_a_thread_the_test_starts_and_joins_is_its_own(prefect_runs):
            thread = threading.Thread(target=tiny, args=(3,))
            thread.start()
            thread.join()
            assert [run.parameters for run in prefect_runs.flow_runs] == [{"x": 3}]
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "-W", "default")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_2_records_only_its_own_runs",
            "*StrayRunWarning: * flow run(s) were started by thread 'flow-looper', which test "
            "'test_runs_of_a_thread_*.py::test_1_leaves_a_thread_running_flows' started and left running: "
            "'*' (flow 'tiny')*They are not in this test's records (prefect_runs).*",
        ]
    )


def test_a_tests_run_records_are_dropped_once_its_reports_are_made(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import gc
        import weakref
        from prefect import flow, get_run_logger

        class Payload:
            pass

        RESULTS = []

        @flow
        def produce():
            get_run_logger().info("producing")
            return Payload()

        def test_0_starts_prefects_log_worker(run_flow):
            # Prefect's API log worker keeps the context of the run that started it (its result
            # store's cache included) for the session, natively too: let another test's run start it.
            run_flow(produce)

        def test_1_runs_a_flow(run_flow, prefect_runs):
            RESULTS.append(weakref.ref(run_flow(produce).result()))
            RESULTS.append(weakref.ref(prefect_runs))

        def test_2_the_first_tests_records_and_result_are_gone():
            gc.collect()
            assert [ref() for ref in RESULTS] == [None, None]
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "--prefect-report=json:flows.json")
    result.assert_outcomes(passed=3)
    assert '"flow_runs"' in (pytester.path / "flows.json").read_text()  # coverage kept what it needs
