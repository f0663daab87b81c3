"""Deployments run in tests: `prefect_run_deployment`, `prefect_deployments`, `assert_deployable`."""

from __future__ import annotations

import pytest

FLOWS = """
from prefect import flow
from prefect.deployments import run_deployment

@flow(name="greet")
def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"

@flow(name="fan-out")
def fan_out(names: list[str]) -> list[str]:
    runs = [run_deployment("greet/greet-daily", parameters={"name": n}, timeout=60) for n in names]
    return [run.state.name for run in runs]

@flow(name="fan-out-async")
async def fan_out_async(name: str) -> str:
    run = await run_deployment("greet/greet-daily", parameters={"name": name}, as_subflow=False)
    return run.state.name
"""

PREFECT_YAML = """
deployments:
  - name: greet-daily
    entrypoint: flows/greet.py:greet
    parameters: {name: world, punctuation: "?"}
    work_pool: {name: local}
  - name: greet-templated
    entrypoint: flows/greet.py:greet
    parameters: {name: "{{ prefect.variables.who }}"}
    work_pool: {name: local}
"""

TESTS = """
import pytest
from flows.greet import fan_out, fan_out_async, greet
from pytest_prefect_flows import (
    DeploymentCheckError, UnknownDeploymentError, UsageError, assert_completed, assert_deployable,
)

def test_run_deployment_merges_the_deployment_defaults(prefect_run_deployment):
    run = prefect_run_deployment("greet/greet-daily", parameters={"name": "Ada"})
    assert_completed(run)
    assert run.result() == "hello Ada?"
    assert run.parameters == {"name": "Ada", "punctuation": "?"}

def test_a_templated_default_is_passed_by_the_test(prefect_run_deployment):
    with pytest.raises(UsageError, match=r"greet-templated: parameter.s. name default to a `{{ ... }}`"):
        prefect_run_deployment("greet/greet-templated")
    templated = prefect_run_deployment("greet/greet-templated", parameters={"name": "Bo"})
    assert templated.result() == "hello Bo!"

def test_unknown_deployment_names_the_ones_that_exist(prefect_run_deployment):
    with pytest.raises(UnknownDeploymentError, match="greet/greet-daily"):
        prefect_run_deployment("greet/nightly")

def test_orchestrator_runs_its_deployments_in_process(run_flow, prefect_deployments, prefect_runs):
    run = run_flow(fan_out, ["Ada", "Linus"])
    assert run.result() == ["Completed", "Completed"]
    assert [call.parameters for call in prefect_deployments.calls] == [{"name": "Ada"}, {"name": "Linus"}]
    assert [r.result() for r in prefect_runs.find("greet")] == ["hello Ada?", "hello Linus?"]

def test_async_orchestrator(run_flow, prefect_deployments):
    run = run_flow(fan_out_async, "Grace")
    assert run.result() == "Completed"
    assert prefect_deployments.calls[0].as_subflow is False

def test_stub_replaces_a_deployment_and_records_the_call(run_flow, prefect_deployments, prefect_runs):
    prefect_deployments.stub("greet/greet-daily", state="Crashed")
    run = run_flow(fan_out, ["Ada"])
    assert run.result() == ["Crashed"]
    assert prefect_deployments.calls[0].stubbed and prefect_deployments.calls[0].timeout == 60
    assert prefect_runs.find("greet") == []

def test_assert_deployable_checks_python_deployments():
    result = assert_deployable(greet.to_deployment("py", cron="0 9 * * *", parameters={"name": "x"}))
    assert len(next(iter(result.fire_times.values()))) == 3
    with pytest.raises(DeploymentCheckError, match="parameters.name: missing"):
        assert_deployable(greet.to_deployment("py", parameters={"punctuation": "."}))
"""


def test_deployments_run_in_process(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("flows").joinpath("greet.py").write_text(FLOWS)
    pytester.path.joinpath("prefect.yaml").write_text(PREFECT_YAML)
    pytester.makepyfile(test_greet=TESTS)

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=7)


def test_the_old_run_deployment_fixture_works_and_names_its_successor(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("flows").joinpath("greet.py").write_text(FLOWS)
    pytester.path.joinpath("prefect.yaml").write_text(PREFECT_YAML)
    pytester.makepyfile(
        test_old_name="""
        def test_old_name(run_deployment, prefect_run_deployment):
            assert run_deployment is prefect_run_deployment
            assert run_deployment("greet/greet-daily").result() == "hello world?"
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*test_old_name.py:*: PrefectFlowsDeprecationWarning: The run_deployment fixture is now "
            "prefect_run_deployment: a fixture named run_deployment hides Prefect's own "
            "prefect.deployments.run_deployment *",
        ]
    )
