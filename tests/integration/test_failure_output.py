"""What a failing flow test prints: each Prefect run-log line once, repeated error text capped."""

from __future__ import annotations

import re

import pytest

# The flow logs 30 lines (10 of its own, 4 in each of the task's 5 attempts); every attempt fails
# with the long error `requests` raises for a refused connection.
FLOW = """
import logging

import requests
from prefect import flow, get_run_logger, task

from pytest_prefect_flows import assert_completed

REFUSED = (
    "HTTPSConnectionPool(host='api.example.com', port=443): Max retries exceeded with url: "
    "/v1/orders?page=1 (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object "
    "at 0x7f3a2c1d0e50>: Failed to establish a new connection: [Errno 111] Connection refused'))"
)

@task(retries=4)
def fetch_orders(page: int) -> list:
    for part in range(4):
        get_run_logger().info("fetching page %s, part %s", page, part)
    raise requests.ConnectionError(REFUSED)

@flow
def sync_orders() -> list:
    for step in range(10):
        get_run_logger().info("preparing step %s", step)
    return fetch_orders(1)

def test_sync_orders(run_flow):
    print("the user's own print")
    logging.getLogger("orders.client").warning("the user's own log record")
    assert_completed(run_flow(sync_orders))
"""

ERROR_TEXT = "Failed to establish a new connection"


def failure_section(lines: list[str], test_name: str) -> list[str]:
    """The lines pytest prints for one failing test: its header up to the next section."""
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"_+ {test_name} _+", line))
    end = next(
        i
        for i in range(start + 1, len(lines))
        if re.match(r"(=+ |-+ prefect flow coverage|_+ test_)", lines[i])
    )
    return lines[start:end]


def test_a_failing_flow_test_shows_each_log_line_once_in_a_screen(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_orders=FLOW)
    result = pytester.runpytest_subprocess()

    result.assert_outcomes(failed=1)
    failure = failure_section(result.outlines, "test_sync_orders")
    # before: 262 lines, the error text 34 times (pytest's captured stderr and log, then the plugin's)
    assert len(failure) <= 60, len(failure)
    assert sum(ERROR_TEXT in line for line in failure) <= 2  # the assertion's message, the logs
    # no copy in pytest's captured log ("INFO prefect.task_runs:...") or Prefect's console ("| Task run '")
    assert not [line for line in failure if "prefect.task_runs:" in line or "| Task run '" in line]
    assert sum("fetching page 1, part 3" in line for line in failure) == 5  # once per attempt
    assert "... 15 earlier lines (-v shows them)" in failure
    # the test's own output stays: its print, its log record (pytest's log and Prefect's console)
    assert "the user's own print" in failure
    assert sum("WARNING" in line and "the user's own log record" in line for line in failure) == 2


def test_verbose_shows_every_run_log_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_orders=FLOW)
    result = pytester.runpytest_subprocess("-v")

    result.assert_outcomes(failed=1)
    failure = failure_section(result.outlines, "test_sync_orders")
    assert sum("preparing step 0" in line for line in failure) == 1
    assert not [line for line in failure if "earlier lines" in line]
