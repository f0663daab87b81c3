"""`fail_task` and fast retries as users meet them, through the real plugin in a subprocess."""

from __future__ import annotations

import inspect

import pytest

from tests.conftest import record_long_sleeps

PIPELINE = """
from prefect import flow, task

WRITES = []

@task(retries=2, retry_delay_seconds=[60, 300])
def extract_data(source):
    WRITES.append(("extract", source))
    return [1, 2, 3]

@task
def load_data(rows):
    WRITES.append(("load", len(rows)))
    return len(rows)

@flow
def pipeline(source="db"):
    return load_data(extract_data(source))
"""


def test_tasks_are_unchanged_and_faults_do_not_leak(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pipeline=PIPELINE)
    pytester.makepyfile(
        """
        from prefect.task_engine import AsyncTaskRunEngine, SyncTaskRunEngine
        from pipeline import WRITES, extract_data, load_data, pipeline

        ORIGINAL = (extract_data.fn, extract_data.retries, extract_data.retry_delay_seconds, load_data.fn)
        ENGINE = (SyncTaskRunEngine.call_task_fn, AsyncTaskRunEngine.call_task_fn)

        def test_1_inject(run_flow, fail_task):
            fail_task(extract_data, times=2, exc=ConnectionError("down"))
            fail_task.after(load_data, exc=OSError("ack lost"))
            run = run_flow(pipeline)
            assert run.task("extract_data").attempts == 3
            assert run.state_name == "Failed"

        def test_2_no_faults_left(run_flow):
            WRITES.clear()
            run = run_flow(pipeline)
            assert run.state_name == "Completed"
            assert run.task("extract_data").attempts == 1
            assert WRITES == [("extract", "db"), ("load", 3)]
            current = (extract_data.fn, extract_data.retries, extract_data.retry_delay_seconds, load_data.fn)
            assert current == ORIGINAL
            assert (SyncTaskRunEngine.call_task_fn, AsyncTaskRunEngine.call_task_fn) == ENGINE
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_unused_fault_errors_with_names_and_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pipeline=PIPELINE)
    pytester.makepyfile(
        """
        import pytest
        from pipeline import pipeline

        def test_misspelt(fail_task):
            fail_task("extract_dta", times=2)
            pipeline()

        @pytest.mark.prefect(check_unused_faults=False)
        def test_opted_out(fail_task):
            fail_task("never_runs")
            pipeline()

        def test_failed_for_its_own_reason(fail_task):
            fail_task("never_runs")
            assert pipeline() == 4, "the test's own failure"
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1, failed=1)
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_failed_for_its_own_reason*")
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_misspelt*",
            "*UnusedFaultError: 1 injected fault(s) never fired:",
            "*fail_task('extract_dta', times=2)  <FaultSpec before 'extract_dta' times=2 fired=0>",
            "*did you mean 'extract_data'?",
            "*Tasks that ran: extract_data, load_data",
            "*@pytest.mark.prefect(check_unused_faults=False)*",
        ]
    )


def test_crash_through_run_flow_and_in_a_direct_call(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pipeline=PIPELINE)
    pytester.makepyfile(
        """
        from pipeline import WRITES, pipeline

        def test_run_flow_returns_the_crashed_record(run_flow, fail_task):
            fail_task.crash("load_data")
            run = run_flow(pipeline)
            assert (run.state_name, run.task("load_data").state_name) == ("Crashed", "Crashed")
            assert ("load", 3) not in WRITES

        def test_direct_call(fail_task):
            fail_task.crash("load_data")
            pipeline()
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*InjectedCrash: crashed task run 'load_data-*injected by fail_task.crash('load_data')*"
            "Run the flow with run_flow(flow) to get its Crashed record instead.",
        ]
    )


def test_fast_retries_marker_turns_real_waiting_back_on(pytester: pytest.Pytester) -> None:
    # The engine's waits are recorded by a stand-in `time.sleep` instead of being timed (or slept).
    pytester.makeconftest(
        "import sys\nimport time\nimport pytest\n\n"
        + inspect.getsource(record_long_sleeps)
        + "\n\n@pytest.fixture\ndef long_sleeps(monkeypatch):\n    return record_long_sleeps(monkeypatch)\n"
    )
    pytester.makepyfile(
        """
        import pytest
        from prefect import flow, task

        @task(retries=1, retry_delay_seconds=2)
        def flaky(attempts):
            attempts.append(1)
            if len(attempts) == 1:
                raise ConnectionError("first attempt")

        @flow
        def job():
            flaky([])

        @flow(retries=1, retry_delay_seconds=2)
        def flaky_flow(attempts):
            attempts.append(1)
            if len(attempts) == 1:
                raise ConnectionError("first attempt")

        def test_fast_by_default(run_flow, long_sleeps):
            run = run_flow(job)
            assert run.task("flaky").retry_delays == [2]
            assert long_sleeps == []

        @pytest.mark.prefect(fast_retries=False)
        def test_real_waiting_for_tasks(run_flow, long_sleeps):
            run = run_flow(job)
            assert run.task("flaky").retry_delays == [2]
            assert long_sleeps == [2]

        @pytest.mark.prefect(fast_retries=False)
        def test_real_waiting_for_flows(run_flow, long_sleeps):
            run = run_flow(flaky_flow, [])
            assert run.state_name == "Completed"
            assert run.retry_delays == [2]
            assert long_sleeps[0] == 2  # then it polls the server until the retry is due
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_a_raising_when_predicate_fails_the_test_at_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pipeline=PIPELINE)
    pytester.makepyfile(
        """
        from pipeline import WRITES, extract_data, pipeline

        def test_typo_in_when(run_flow, fail_task):
            fail_task(extract_data, when=lambda params: params["sorce"] == "db")
            run_flow(pipeline)

        def test_typo_in_when_direct_call(fail_task):
            fail_task(extract_data, when=lambda params: params["sorce"] == "db")
            pipeline()
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*UsageError: The `when=` of fail_task('extract_data', when=<lambda>) raised KeyError('sorce') "
            "for task 'extract_data' with the parameters {'source': 'db'}*",
        ]
        * 2
    )
    result.stdout.no_fnmatch_line("*never fired*")
    result.stdout.no_fnmatch_line("*Retrying*")
