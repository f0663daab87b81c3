"""The backend dying mid-session and flow runs that hang: a restart or a clear error, never a hang."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

FLOW_MODULE = """
import threading
import time
from prefect import flow, task

@task
def double(x):
    return 2 * x

@flow
def small(x: int = 3):
    return double(x)

@task(retries=2)
def sleepy():
    time.sleep(120)

@flow
def stuck_in_task():
    sleepy()

@flow
def stuck_in_flow():
    threading.Event().wait()
"""


def test_server_that_died_is_restarted_on_the_next_flow_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        from flows import small

        def test_server_dies_mid_test(prefect_harness, run_flow):
            assert run_flow(small, 1).result() == 2
            prefect_harness.stop_server()
            assert not prefect_harness.alive
            assert run_flow(small, 2).result() == 4
            assert prefect_harness.alive

        def test_next_test_runs_flows(prefect_harness, run_flow):
            assert run_flow(small, 3).result() == 6
            assert prefect_harness.restarts == 1
        """
    )
    result = pytester.runpytest_subprocess("-q", timeout=240)
    result.assert_outcomes(passed=2)


def test_server_that_keeps_dying_fails_the_next_test_naming_the_cause(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        from pytest_prefect_flows.backend import MAX_RESTARTS
        from flows import small

        def test_kills_the_server_again_and_again(prefect_harness):
            for _ in range(MAX_RESTARTS + 1):
                assert small() == 6
                prefect_harness.stop_server()

        def test_after_it_gave_up():
            small()
        """
    )
    result = pytester.runpytest_subprocess("-q", timeout=240)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*BackendError: The isolated Prefect backend stopped 4 times (last: stopped); not restarting it.*"]
    )
    assert "httpx" not in result.stdout.str()


def test_hang_guard_fails_a_stuck_task_with_the_run_timeline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        import pytest
        from flows import small, stuck_in_task

        @pytest.mark.prefect(timeout=1)
        def test_stuck(run_flow):
            run_flow(stuck_in_task)

        def test_session_still_usable(run_flow):
            assert run_flow(small, 4).result() == 8
        """
    )
    result = pytester.runpytest_subprocess("-q", timeout=240)  # the task alone would sleep 3 x 120 s
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*time.sleep(120)*",
            "E*FlowRunTimeoutError: hang guard: flow run * (flow 'stuck-in-task') did not finish within 1 s",
            "E*Timeline of flow run '*' (stuck-in-task): Running",
            "E*task*attempt*state*start*duration",
            "E*sleepy-*1*Running*",
            "E*Raise the limit with @pytest.mark.prefect(timeout=...)*",
        ]
    )


def test_prefect_timeout_option_stops_a_flow_blocked_on_a_lock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        from flows import stuck_in_flow

        def test_stuck_called_directly():
            stuck_in_flow()
        """
    )
    result = pytester.runpytest_subprocess("-q", "--prefect-timeout=1", timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*threading.Event().wait()*",
            "E*FlowRunTimeoutError: hang guard: flow run * (flow 'stuck-in-flow')*",
        ]
    )


STUCK_WORKERS = """
import threading
from prefect import flow, task

@task
def blocks_forever(x=0):
    threading.Event().wait()

@flow
def stuck_in_submitted_task():
    return blocks_forever.submit().result()

@flow
def stuck_in_mapped_tasks():
    return blocks_forever.map([1, 2]).result()
"""


@pytest.mark.fresh_interpreter  # the interpreter's own exit must not wait for the stuck threads either
def test_a_stuck_worker_thread_is_abandoned_and_the_session_goes_on(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(stuck=STUCK_WORKERS)
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        import pytest
        from flows import small
        from stuck import stuck_in_mapped_tasks, stuck_in_submitted_task

        @pytest.mark.prefect(timeout=2)
        def test_1_submitted(run_flow):
            run_flow(stuck_in_submitted_task)

        @pytest.mark.prefect(timeout=2)
        def test_2_mapped():
            stuck_in_mapped_tasks()

        @pytest.mark.timeout(6, method="signal")
        def test_3_pytest_timeout(run_flow):
            run_flow(stuck_in_submitted_task)

        def test_4_next(run_flow):
            assert run_flow(small, 4).result() == 8
        """
    )
    # Before, the main thread waited for the stuck worker in the task runner's exit: bounded here.
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "-W", "default", timeout=240)
    result.assert_outcomes(failed=3, passed=1)
    result.stdout.fnmatch_lines(
        [
            "E*FlowRunTimeoutError: hang guard: flow run * (flow 'stuck-in-submitted-task') did not finish*",
            "E*task run 'blocks_forever-*' was stuck in thread 'ThreadPoolExecutor-*':",
            "E*in blocks_forever",
            "E*threading.Event().wait()",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E*FlowRunTimeoutError: hang guard: flow run * (flow 'stuck-in-mapped-tasks') did not finish*",
            "E*task run 'blocks_forever-*' was stuck in thread 'ThreadPoolExecutor-*':",
            "E*task run 'blocks_forever-*' was stuck in thread 'ThreadPoolExecutor-*':",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*AbandonedThreadWarning: worker thread 'ThreadPoolExecutor-*' was still busy when its flow run "
            "was interrupted (Failed: Timeout (>6.0s) from pytest-timeout.)*",
        ]
    )


NEEDS_BACKEND = """
from prefect import flow

@flow
def small():
    return 1

def test_first(run_flow):
    assert run_flow(small).result() == 1

def test_second():
    assert small() == 1
"""

BROKEN_SERVER_DEPENDENCIES = """
import pytest_prefect_flows.backend.isolated as isolated

isolated.server_dependency_problem = lambda: (
    "prefect 3.4.25 cannot talk to its own server with fastapi 0.150.0: (as _compat says)"
)
"""


def _unwritable_directory(path: Path) -> Path:
    """A directory this process cannot write in: read-only for a user; root writes anywhere but
    in sysfs, which refuses new files to everyone."""
    if os.geteuid() == 0:
        return Path("/sys")
    path.mkdir()
    path.chmod(0o555)
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sysfs and geteuid: Linux")
@pytest.mark.parametrize(
    ("cause", "error"),
    [
        (
            "template=garbage",
            "BackendError: PYTEST_PREFECT_FLOWS_TEMPLATE='garbage' is not a template source: unset it*",
        ),
        (
            "cache is a file",
            "BackendError: The template cache * cannot be written (FileExistsError: File exists)*",
        ),
        ("cache under a file", "BackendError: The template cache * cannot be written (NotADirectoryError: *"),
        ("cache read-only", "BackendError: The template cache * cannot be written (PermissionError: *"),
        (
            "server dependencies",
            "BackendError: prefect 3.4.25 cannot talk to its own server with fastapi 0.150.0*",
        ),
    ],
)
def test_a_backend_that_cannot_start_fails_every_test_from_the_first_naming_the_cause(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, cause: str, error: str
) -> None:
    cache = pytester.path / "empty-cache"
    if cause == "template=garbage":
        monkeypatch.setenv("PYTEST_PREFECT_FLOWS_TEMPLATE", "garbage")
    elif cause == "cache is a file":
        cache.write_text("not a directory")
    elif cause == "cache under a file":
        pytester.path.joinpath("a-file").write_text("")
        cache = pytester.path / "a-file" / "cache"
    elif cause == "cache read-only":
        cache = _unwritable_directory(cache)
    else:
        pytester.makeconftest(BROKEN_SERVER_DEPENDENCIES)
        cache = Path(os.environ["PYTEST_PREFECT_FLOWS_CACHE"])
    monkeypatch.setenv("PYTEST_PREFECT_FLOWS_CACHE", str(cache))
    pytester.makepyfile(NEEDS_BACKEND)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-rfE")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_second*",
            error,
            "*_ test_first _*",
            error,
            "(the test then raised RuntimeError: Failed to reach API at http://127.0.0.1:*/api/)",
        ]
    )
    assert "isolated.py" not in result.stdout.str()
