"""docs/getting-started.md: a failing assertion, with the run's timeline."""

from my_flows.orders import daily_orders

from pytest_prefect_flows import assert_task_retried


def test_fetch_is_retried(run_flow, fail_task):
    fail_task("fetch_orders", times=1, exc=ConnectionError("API down"))

    run = run_flow(daily_orders, "2026-01-01")

    assert_task_retried(run, "fetch_orders", times=2)
