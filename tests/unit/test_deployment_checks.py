"""The deployment check engine without pytest items: references, names, scripts, stubs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_prefect_flows import UnusedStubError, UsageError, assert_deployable
from pytest_prefect_flows.deployments.checks import check_spec, parse_known_refs, reference_of
from pytest_prefect_flows.deployments.running import Catalog, DeploymentPatch, DeploymentRunner, split_name
from pytest_prefect_flows.prefect_yaml import load_project
from pytest_prefect_flows.recording import RunLog

SCRIPT = """
from prefect import flow

@flow(name="nightly")
def nightly(day: str, limit: int = 10):
    return day
"""


def test_known_refs_are_variables_or_typed_blocks():
    assert parse_known_refs(["variables.db_config", " blocks.secret.db-password "]) == {
        "variables.db_config",
        "blocks.secret.db-password",
    }
    with pytest.raises(UsageError, match=r"'db_config' is not a reference; write `variables.NAME`"):
        parse_known_refs(["db_config"])


@pytest.mark.parametrize(
    ("placeholder", "reference"),
    [
        ("prefect.variables.db_config", "variables.db_config"),
        ("prefect.blocks.secret.db-password", "blocks.secret.db-password"),
        ("prefect.blocks.json.config.value", "blocks.json.config"),
        ("build_image.image", None),
        ("$HOME", None),
    ],
)
def test_placeholders_map_to_references(placeholder, reference):
    assert reference_of(placeholder) == reference


def test_a_standalone_script_entrypoint_with_templates(tmp_path: Path):
    tmp_path.joinpath("nightly.py").write_text(SCRIPT)
    tmp_path.joinpath("prefect.yaml").write_text(
        "deployments:\n"
        "  - name: n\n"
        "    entrypoint: nightly.py:nightly\n"
        '    parameters: {day: "{{ prefect.variables.day }}", limit: "{{ prefect.variables.limit }}"}\n'
        '    schedules: [{cron: "{{ prefect.variables.cron }}"}]\n'
        "    work_pool: {name: pool}\n"
    )
    project = load_project(tmp_path / "prefect.yaml")

    result = check_spec(project.deployments[0], project, known_refs=frozenset({"variables.day"}))

    # templated values are filled in by `prefect deploy`: only unknown references fail
    assert [problem.field for problem in result.problems] == ["parameters.limit", "schedules[0].cron"]
    assert result.references == ["variables.day", "variables.limit", "variables.cron"]
    assert result.flow.name == "nightly"


def test_deployment_names_are_flow_slash_deployment():
    assert split_name("etl/nightly") == ("etl", "nightly")
    with pytest.raises(UsageError, match=r"`flow-name/deployment-name`.*got 'nightly'"):
        split_name("nightly")


def test_unknown_names_and_states_are_usage_errors(tmp_path: Path):
    patch = DeploymentPatch(DeploymentRunner(Catalog(tmp_path), RunLog()))
    with pytest.raises(UsageError, match=r"state is one of Completed, Failed, Crashed, Cancelled"):
        patch.stub("etl/nightly", state="Succeeded")
    with pytest.raises(UsageError, match=r"No prefect.yaml deployment 'etl/nightly'.*found: none"):
        Catalog(tmp_path).find("etl/nightly")


def test_a_stub_never_called_fails_naming_it(tmp_path: Path):
    patch = DeploymentPatch(DeploymentRunner(Catalog(tmp_path), RunLog()))
    patch.stub("etl/nightly")
    patch.stub("etl/hourly", required=False)

    with pytest.raises(UnusedStubError, match=r"never called: etl/nightly\.\nDeployments called: \(none\)"):
        patch.__exit__(None, None, None)


def test_assert_deployable_takes_a_deployment_object():
    with pytest.raises(UsageError, match=r"takes a deployment from flow.to_deployment"):
        assert_deployable("etl/nightly")
