"""Prefect's run logs as under `prefect_test_harness()`: sent to the isolated API, stored, readable
with the client; Prefect's own warning about a log without a flow run id is emitted."""

from __future__ import annotations

import pytest

TESTS = """
import asyncio
import logging

import pytest
from prefect import flow, get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.logging.handlers import APILogHandler

@task
def extract():
    get_run_logger().info("extracting rows")

@flow
def pipeline():
    get_run_logger().info("pipeline starts")
    extract()

async def messages(flow_run_id):
    async with get_client() as client:
        return [log.message for log in await client.read_logs()
                if str(log.flow_run_id) == str(flow_run_id)]

def test_run_logs_are_stored_in_the_api(run_flow):
    run = run_flow(pipeline)
    APILogHandler().flush()
    stored = asyncio.run(messages(run.id))
    assert "pipeline starts" in stored
    assert "extracting rows" in stored

def test_a_direct_call_logs_to_the_api_too():
    state = pipeline(return_state=True)
    APILogHandler().flush()
    assert "pipeline starts" in asyncio.run(messages(state.state_details.flow_run_id))

def test_prefect_warns_about_a_log_without_a_flow_run_id():
    with pytest.warns(UserWarning, match="without a flow run id"):
        logging.getLogger("prefect.flow_runs").info("outside of any run")
"""


def test_run_logs_reach_the_isolated_api(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_logs=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert "Error logging to API" not in result.stdout.str() + result.stderr.str()
