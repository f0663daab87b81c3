"""The `on_failure` hook: a failed run sends one message to the `alerts` block, a good run sends none."""

from __future__ import annotations

from example_flows.monitored import daily_report
from pytest_prefect_flows import assert_completed, assert_failed, assert_task_not_run, assert_task_retried


def test_a_successful_run_sends_no_alert(run_flow, fake_blocks):
    alerts = fake_blocks.notifications("alerts")

    run = run_flow(daily_report, [10.0, 2.5, 7.5])

    assert_completed(run)
    assert run.result() == "3 orders, total 20.00, largest 10.00"
    assert alerts.messages == []


def test_a_failed_run_alerts_with_its_name_and_error(run_flow, fake_blocks):
    alerts = fake_blocks.notifications("alerts")

    run = run_flow(daily_report, [])

    assert_failed(run, ValueError, match="no amounts")
    assert_task_not_run(run, "publish_report")
    assert len(alerts.messages) == 1
    message = alerts.messages[0]
    assert run.name in message.body
    assert "no amounts to report on" in message.body
    assert message.subject == "Prefect flow daily-report failed"


def test_alert_is_sent_only_once_retries_are_exhausted(run_flow, fake_blocks, fail_task):
    alerts = fake_blocks.notifications("alerts")
    fail_task("publish_report", times=None, exc=ConnectionError("report store unreachable"))

    run = run_flow(daily_report, [1.0])

    assert_failed(run, ConnectionError)
    assert_task_retried(run, "publish_report", times=2)
    assert [m.body for m in alerts.messages] == [
        f"Flow run {run.name!r} of 'daily-report' ended Failed: {run.state.message}"
    ]
