"""State-hook errors: found in run records, turned into a warning or a failure per mode."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow, task

from pytest_prefect_flows import HookError, HookErrorWarning, RunFlow, assert_no_hook_errors
from pytest_prefect_flows._options import OPTIONS
from pytest_prefect_flows.hooks import check_hook_errors, hook_errors_in
from pytest_prefect_flows.recording import record_runs


def notify_with_the_prefect_2_signature(task: Any, state: Any) -> None:
    pass


@task(on_failure=[notify_with_the_prefect_2_signature])
def load() -> None:
    raise ValueError("disk full")


@flow
def load_flow() -> None:
    load()


@flow(on_completion=[lambda flow, flow_run, state: None])
def fine_flow() -> None:
    pass


@pytest.mark.prefect(hook_errors="ignore")
def test_a_task_hook_error_names_the_task_run(run_flow: RunFlow) -> None:
    run = run_flow(load_flow)

    [failure] = hook_errors_in(run.all_logs())
    assert failure.hook == "notify_with_the_prefect_2_signature"
    assert failure.kind == "task"
    assert failure.run_name == run.task("load").name
    assert isinstance(failure.exception, TypeError)
    assert run.hook_errors == [failure.exception]
    with pytest.raises(AssertionError, match=r"hook 'notify_with_the_prefect_2_signature' of task run"):
        assert_no_hook_errors(run)


@pytest.mark.prefect(hook_errors="ignore")  # this test's own runs: not the plugin's report here
def test_modes() -> None:
    with record_runs() as runs:
        load_flow(return_state=True)
        fine_flow()

    assert check_hook_errors(runs, "ignore") is None
    assert isinstance(check_hook_errors(runs, "warn"), HookErrorWarning)
    assert isinstance(check_hook_errors(runs, "fail", test_failed=True), HookErrorWarning)
    with pytest.raises(HookError, match="1 state hook"):
        check_hook_errors(runs, "fail")
    assert_no_hook_errors(runs.find("fine-flow")[0])


def test_an_unknown_mode_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'loud' is not one of warn, fail, ignore"):
        OPTIONS["prefect_hook_errors"].check("loud")
