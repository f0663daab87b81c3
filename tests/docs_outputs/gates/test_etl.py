import pytest
from flows.etl import etl

from pytest_prefect_flows import assert_task_retried


@pytest.mark.parametrize("day", ["2026-01-01", "2026-01-02"])
def test_load(run_flow, day):
    assert run_flow(etl, day).result() == 3


def test_extract_is_retried(run_flow, fail_task):
    fail_task("extract", times=1)

    assert_task_retried(run_flow(etl, "2026-01-03"), "extract", times=1)
