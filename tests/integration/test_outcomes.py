"""pytest's outcomes raised inside flow and task runs are the test's, whichever way the flow ran.

Prefect records a run ended by `pytest.fail`, `pytest.skip`, ... as Crashed (`pytest.exit` as Failed)
and carries on; the test must still end failed, skipped, xfailed or stopped, as it asked.
"""

from __future__ import annotations

import pytest

FLOWS = """
import threading
import time
import pytest
from prefect import flow, task

@flow
def fails():
    pytest.fail("the flow says no")

@flow
def skips():
    pytest.skip("the flow skips")

@flow
def xfails():
    pytest.xfail("known to fail")

@task
def failing_task():
    pytest.fail("the task says no")

@flow
def fails_in_task():
    failing_task()

@flow
def fails_in_submitted_task():
    return failing_task.submit().result()

task_began = threading.Event()

@task
def failing_task_that_signals():
    task_began.set()
    pytest.fail("the task says no")

@flow
def fails_in_a_future_nobody_awaits():
    # Return only once the task is inside its function: a task runner that closes before a task
    # begins cancels it (seen on Prefect 3.4 and 3.9), and then no `pytest.fail` is ever raised.
    task_began.clear()
    failing_task_that_signals.submit()
    task_began.wait(30)
    return 1

@flow
async def fails_async():
    pytest.fail("the async flow says no")

@task
def exiting_task():
    pytest.exit("stop the session", returncode=3)

@flow
def exits_in_task():
    exiting_task()

@flow
def sleeps():
    time.sleep(120)
"""


def test_run_flow_keeps_the_outcomes_raised_in_flows_and_tasks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=FLOWS)
    pytester.makepyfile(
        """
        import pytest
        from flows import *

        def test_fail_in_flow(run_flow):
            run_flow(fails)

        def test_skip_in_flow(run_flow):
            run_flow(skips)

        def test_xfail_in_flow(run_flow):
            run_flow(xfails)

        def test_fail_in_task(run_flow):
            run_flow(fails_in_task)

        def test_fail_in_submitted_task(run_flow):
            run_flow(fails_in_submitted_task)

        def test_fail_in_a_future_nobody_awaits(run_flow):
            run_flow(fails_in_a_future_nobody_awaits)
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "-rfsx")
    result.assert_outcomes(failed=4, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*_ test_fail_in_flow _*",
            "E*Failed: the flow says no",
            "*_ test_fail_in_a_future_nobody_awaits _*",
            "E*Failed: the task says no",
            "FAILED *test_fail_in_task*",
            "FAILED *test_fail_in_submitted_task*",
            "SKIPPED *the flow skips",
            "XFAIL *test_xfail_in_flow*known to fail",
        ]
    )


def test_async_and_direct_calls_keep_the_outcomes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=FLOWS)
    pytester.makepyfile(
        """
        import pytest
        from flows import *

        @pytest.mark.anyio
        async def test_run_async(run_flow, anyio_backend):
            await run_flow.run_async(fails_async)

        def test_direct_call_in_a_future_nobody_awaits():
            fails_in_a_future_nobody_awaits()

        def test_an_outcome_the_test_caught_stays_caught():
            with pytest.raises(pytest.fail.Exception, match="the task says no"):
                fails_in_task()

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "-p", "anyio", "-rf")
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines_random(
        [
            "E*Failed: the async flow says no",
            "FAILED *test_run_async*",
            "E*Failed: the task says no",
            "FAILED *test_direct_call_in_a_future_nobody_awaits*",
        ]
    )


def test_pytest_exit_in_a_task_stops_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=FLOWS)
    pytester.makepyfile(
        """
        from flows import exits_in_task

        def test_exits(run_flow):
            run_flow(exits_in_task)

        def test_never_runs():
            raise AssertionError("the session went on after pytest.exit")
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    assert result.ret == 3
    result.stdout.fnmatch_lines(["*Exit: stop the session*"])
    result.stdout.no_fnmatch_line("*the session went on*")


def test_pytest_timeout_signal_method_fails_a_run_flow_test(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(flows=FLOWS)
    pytester.makepyfile(
        """
        import pytest
        from flows import sleeps, fails_in_a_future_nobody_awaits

        def test_starts_the_backend(run_flow):
            with pytest.raises(pytest.fail.Exception):
                run_flow(fails_in_a_future_nobody_awaits)

        @pytest.mark.timeout(5, method="signal")
        def test_sleeps(run_flow):
            run_flow(sleeps)
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout*from pytest-timeout*", "FAILED *test_sleeps*"])


def test_run_deployment_keeps_the_outcome(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("flows").joinpath("deployed.py").write_text(FLOWS)
    pytester.path.joinpath("prefect.yaml").write_text(
        "deployments:\n"
        "  - name: daily\n    entrypoint: flows/deployed.py:fails_in_a_future_nobody_awaits\n"
        "  - name: skipping\n    entrypoint: flows/deployed.py:skips\n"
    )
    pytester.makepyfile(
        """
        def test_fail(run_deployment):
            run_deployment("fails-in-a-future-nobody-awaits/daily")

        def test_skip(run_deployment):
            run_deployment("skips/skipping")
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "-rfs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines_random(["E*Failed: the task says no", "SKIPPED *the flow skips"])
