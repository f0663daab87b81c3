"""`--prefect-check-deployments` as users meet it: an item per prefect.yaml deployment, each failing alone."""

from __future__ import annotations

import pytest

FLOWS = """
from prefect import flow

@flow
def hello(name: str, times: int = 1) -> str:
    return name * times

def not_a_flow():
    pass
"""

# One good deployment, then one broken in each way the gate checks.
PREFECT_YAML = """
definitions:
  work_pools:
    default: &default_pool
      name: local
deployments:
  - name: good
    entrypoint: flows/hello.py:hello
    parameters: {name: "{{ prefect.variables.greeting }}", times: 2}
    schedules:
      - cron: "0 9 * * 1-5"
        timezone: Europe/Berlin
    work_pool: *default_pool
  - name: not-a-flow
    entrypoint: flows/hello.py:not_a_flow
    work_pool: *default_pool
  - name: missing-file
    entrypoint: flows/gone.py:hello
    work_pool: *default_pool
  - name: bad-params
    entrypoint: flows/hello.py:hello
    parameters: {times: many, colour: red}
    work_pool: *default_pool
  - name: bad-schedules
    entrypoint: flows/hello.py:hello
    parameters: {name: x}
    schedules:
      - cron: "61 * * * *"
      - cron: "0 9 * * *"
        timezone: Mars/Olympus
      - rrule: FREQ=SOMETIMES
      - interval: 600
        parameters: {times: lots}
    work_pool: *default_pool
  - name: unknown-ref
    entrypoint: flows/hello.py:hello
    parameters: {name: "{{ prefect.blocks.secret.db-pw }}"}
    work_pool: *default_pool
  - name: ref-known-by-conftest
    entrypoint: flows/hello.py:hello
    parameters: {name: "{{ prefect.blocks.secret.known-by-conftest.value }}"}
    work_pool: *default_pool
  - name: bad-step
    entrypoint: flows/hello.py:hello
    parameters: {name: x}
    pull:
      - prefect_nowhere.steps.clone: {requires: prefect-nowhere}
    work_pool: *default_pool
  - name: no-pool
    entrypoint: flows/hello.py:hello
    parameters: {name: x}
    entrpoint: typo
  - name: twice
    entrypoint: flows/hello.py:hello
    parameters: {name: x}
    work_pool: *default_pool
  - name: twice
    entrypoint: flows/hello.py:hello
    parameters: {name: y}
    work_pool: *default_pool
"""

UNDEFINED_ALIAS = """
deployments:
  - name: orphan
    entrypoint: flows/hello.py:hello
    work_pool: *undefined_pool
"""


@pytest.fixture
def repo(pytester: pytest.Pytester) -> pytest.Pytester:
    """A repository whose tests live in tests/ (testpaths) and whose prefect.yaml files do not."""
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\nprefect_known_refs = ["variables.greeting"]\n'
    )
    pytester.mkpydir("flows").joinpath("hello.py").write_text(FLOWS)
    pytester.path.joinpath("prefect.yaml").write_text(PREFECT_YAML)
    pytester.mkdir("other").joinpath("prefect.yaml").write_text(UNDEFINED_ALIAS)
    pytester.mkdir("tests").joinpath("test_ok.py").write_text("def test_ok():\n    pass\n")
    pytester.makeconftest(
        "def pytest_prefect_known_refs(config):\n    return ['blocks.secret.known-by-conftest']\n"
    )
    return pytester


def test_exactly_the_broken_deployments_fail_naming_file_deployment_and_field(repo: pytest.Pytester) -> None:
    result = repo.runpytest_subprocess("--prefect-check-deployments", "-v", "--junitxml=report.xml")

    result.assert_outcomes(passed=3, failed=10)
    result.stdout.fnmatch_lines_random(
        [
            "prefect.yaml::good PASSED*",
            "prefect.yaml::ref-known-by-conftest PASSED*",
            "tests/test_ok.py::test_ok PASSED*",
            "*prefect.yaml::not-a-flow: deployment check failed (entrypoint)",
            "*entrypoint: 'flows/hello.py:not_a_flow': *not a flow*",
            "*entrypoint: 'flows/gone.py:hello': no file *gone.py*fix the path.",
            "*prefect.yaml::bad-params: deployment check failed "
            "(parameters.colour, parameters.times, parameters.name)",
            "*parameters.colour: 'hello' has no parameter 'colour' (it takes: name, times)*",
            "*parameters.times: 'many' is not of type 'integer'; the flow declares `times: int`*",
            "*parameters.name: missing: 'hello' requires it*",
            '*schedules?0?: not a valid schedule (Invalid cron string: "61 * * * *")*',
            '*schedules?1?: not a valid schedule (Invalid timezone: "Mars/Olympus"*',
            "*schedules?2?: not a valid schedule (*FREQ*",
            "*schedules?3?.parameters.times: 'lots' is not of type 'integer'*",
            "*parameters.name: {{ prefect.blocks.secret.db-pw }} refers to blocks.secret.db-pw, which "
            "prefect_known_refs does not list (blocks.secret.known-by-conftest, variables.greeting)*",
            "*pull?0?: step 'prefect_nowhere.steps.clone' cannot be imported*install prefect-nowhere.",
            "*entrpoint: not a deployment field*did you mean `entrypoint`?*",
            "*work_pool.name: missing*",
            "*prefect.yaml::twice: deployment check failed (name)",
            "*prefect.yaml::twice#2: deployment check failed (name)",
            "*other/prefect.yaml::(file)*",
            "*found undefined alias*undefined_pool*",
            # -v: the good deployment's next three fire times and its references
            "prefect.yaml::good",
            "    schedules?0? (cron 0 9 * * 1-5, Europe/Berlin): next *T09:00:00+0?:00, *, *T09:00:00+0?:00",
            "    references: variables.greeting",
        ]
    )
    junit = repo.path.joinpath("report.xml").read_text()
    assert 'name="bad-params"' in junit
    assert 'name="good"' in junit
    assert '<property name="deployment" value="references: variables.greeting"' in junit


def test_deployments_are_selected_with_k_and_the_gate_is_off_by_default(repo: pytest.Pytester) -> None:
    selected = repo.runpytest_subprocess("--prefect-check-deployments", "-k", "bad-params or good")
    selected.assert_outcomes(passed=1, failed=1)

    default = repo.runpytest_subprocess()
    default.assert_outcomes(passed=1)
