"""The reference deployments deploy: the Python one and every entry of prefect.yaml pass the checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from example_flows.deployments import nightly_etl
from pytest_prefect_flows import assert_deployable
from pytest_prefect_flows.deployments.checks import check_spec
from pytest_prefect_flows.prefect_yaml import load_project

PROJECT = load_project(Path(__file__).parents[1] / "prefect.yaml")


def test_the_python_deployment_is_deployable():
    result = assert_deployable(nightly_etl())

    [fire_times] = result.fire_times.values()
    assert [when.hour for when in fire_times] == [2, 2, 2]


@pytest.mark.parametrize("spec", PROJECT.deployments, ids=lambda spec: spec.name)
def test_every_prefect_yaml_deployment_passes_the_gate(spec):
    result = check_spec(spec, PROJECT)

    assert result.problems == []
