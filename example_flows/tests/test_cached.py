"""The cache policy: the second run with the same inputs reads the first run's result."""

from __future__ import annotations

import uuid

import pytest

from example_flows.cached import score_dataset
from pytest_prefect_flows import assert_completed, assert_task_cached


@pytest.fixture
def dataset() -> str:
    """A dataset name no other test (or earlier session) has cached a result for."""
    return f"orders-{uuid.uuid4().hex}"


def test_second_run_with_same_inputs_is_cached(run_flow, dataset: str):
    first = run_flow(score_dataset, dataset, [1, 2, 3])
    second = run_flow(score_dataset, dataset, [1, 2, 3])

    assert_completed(first)
    assert not first.task("expensive_score").cached
    assert_task_cached(second, "expensive_score")
    assert second.result() == first.result()
    assert any("Computed score" in message for message in first.task("expensive_score").messages)
    assert not any("Computed score" in message for message in second.task("expensive_score").messages)


def test_other_inputs_are_computed_again(run_flow, dataset: str):
    first = run_flow(score_dataset, dataset, [1, 2, 3])
    other = run_flow(score_dataset, dataset, [3, 2, 1])

    assert not other.task("expensive_score").cached
    assert other.result() != first.result()
