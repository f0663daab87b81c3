"""State hooks that raise, and flow-level retries, as users meet them through the real plugin."""

from __future__ import annotations

import json

import pytest

FLOWS = """
from prefect import flow, task
from pytest_prefect_flows import assert_flow_retried, assert_no_hook_errors

ATTEMPTS = {"n": 0}

def log_success(flow, state):  # Prefect 3 calls hook(flow, flow_run, state)
    print("success")

def page_on_call(flow, flow_run, state):
    print("paged")

@task
def double(x):
    return 2 * x

@flow(on_completion=[log_success])
def broken_hook(x: int = 2):
    return double(x)

@flow(on_completion=[page_on_call])
def good_hook(x: int = 2):
    return double(x)

@flow(retries=2, retry_delay_seconds=5)
def flaky(fail_times: int):
    ATTEMPTS["n"] += 1
    if ATTEMPTS["n"] <= fail_times:
        raise ConnectionError("warehouse busy")
    return double(ATTEMPTS["n"])

def test_hook_error_warns_by_default(run_flow):
    assert run_flow(broken_hook).state_name == "Completed"

@pytest.mark.prefect(hook_errors="fail")
def test_hook_error_fails_under_fail(run_flow):
    run_flow(broken_hook)

@pytest.mark.prefect(hook_errors="ignore")
def test_hook_error_ignored(run_flow):
    run_flow(broken_hook)

@pytest.mark.prefect(hook_errors="fail")
def test_good_hook_passes_under_fail(run_flow):
    assert_no_hook_errors(run_flow(good_hook))

@pytest.mark.prefect(hook_errors="ignore")
def test_assert_no_hook_errors_fails(run_flow):
    assert_no_hook_errors(run_flow(broken_hook))

def test_flow_retried_passes(run_flow):
    ATTEMPTS["n"] = 0
    run = run_flow(flaky, 2)
    assert_flow_retried(run, times=2, delays=[5, 5])
    assert run.attempts == 3 and run.retry_delays == [5.0, 5.0]

def test_flow_retried_fails(run_flow):
    ATTEMPTS["n"] = 0
    assert_flow_retried(run_flow(flaky, 1), times=2)
"""


def test_hook_errors_and_flow_retries(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_flows="import pytest\n" + FLOWS)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "-rA",
        "--prefect-report=term",
        "--prefect-report=json:out/report.json",
        "--prefect-report=html:out/report.html",
    )
    result.assert_outcomes(passed=4, failed=3)
    result.stdout.fnmatch_lines(
        [
            # fail: the test fails naming the hook, its exception and the run
            "*_ test_hook_error_fails_under_fail _*",
            "HookError: 1 state hook(s) raised*",
            "  hook 'log_success' of flow run '*' raised TypeError: log_success() takes 2 positional*",
            "*hook(flow, flow_run, state)*",
            "*_ test_assert_no_hook_errors_fails _*",
            "*1 state hook(s) of flow run * (broken-hook) raised*",
            "*_ test_flow_retried_fails _*",
            "*Flow run * (flaky) was retried 1 time(s).",
            "*expected:*2 retry(s) (3 attempt(s))",
            "*actual:*1 retry(s) (2 attempt(s)), delays [[]5.0] s",
            # the default: a warning on the test, with the same description
            "test_flows.py::test_hook_error_warns_by_default",
            "*test_flows.py:*: HookErrorWarning: 1 state hook(s) raised*",
            "*hook 'log_success' of flow run '*' raised TypeError: log_success() takes 2 positional*",
            "*HOOK ERROR test_flows.py::test_hook_error_warns_by_default: hook 'log_success' of flow run*",
        ]
    )
    warned = [line for line in result.stdout.lines if "HookErrorWarning" in line]
    assert len(warned) == 1, warned  # neither the ignored test nor the failed one is warned twice
    report = json.loads((pytester.path / "out/report.json").read_text())
    errors = {
        test["nodeid"].split("::")[1]: run["hook_errors"]
        for test in report["tests"]
        for run in test["flow_runs"]
    }
    assert [error["hook"] for error in errors["test_hook_error_warns_by_default"]] == ["log_success"]
    assert errors["test_hook_error_warns_by_default"][0]["error"].startswith("TypeError: log_success()")
    assert errors["test_good_hook_passes_under_fail"] == []
    html = (pytester.path / "out/report.html").read_text()
    # test_assert_no_hook_errors_fails inspected its hook error: its failure reports it, the report does not
    assert "State hooks that raised (3)" in html
    assert "<b>log_success</b>" in html


INSPECTED = """
import pytest
from prefect import flow
from pytest_prefect_flows import assert_no_hook_errors

def notify(flow, state):  # Prefect 3 calls hook(flow, flow_run, state)
    pass

@flow(on_completion=[notify])
def alerting():
    return 1

def test_checked_inside_pytest_raises(run_flow):
    run = run_flow(alerting)
    with pytest.raises(AssertionError, match="notify"):
        assert_no_hook_errors(run)

def test_looked_at_through_the_record(run_flow):
    errors = run_flow(alerting).hook_errors
    assert [type(error) for error in errors] == [TypeError]

def test_never_looked_at(run_flow):
    run_flow(alerting)
"""


@pytest.mark.parametrize("mode", ["warn", "fail"])
def test_inspected_hook_errors_are_not_reported_again(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_alerting=INSPECTED)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-v", f"--prefect-hook-errors={mode}")
    if mode == "warn":
        result.assert_outcomes(passed=3, warnings=1)
        result.stdout.fnmatch_lines(["test_alerting.py::test_never_looked_at", "*HookErrorWarning*"])
    else:
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(["*test_never_looked_at FAILED*"])
    hook_lines = [line for line in result.outlines if line.startswith("HOOK ERROR")]
    assert len(hook_lines) == 1, hook_lines
    assert "test_never_looked_at" in hook_lines[0]
    assert result.stdout.str().count("HookErrorWarning") == (1 if mode == "warn" else 0)
