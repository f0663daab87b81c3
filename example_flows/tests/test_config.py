"""Configuration from a Variable and a Secret, faked per test with `fake_blocks`."""

from __future__ import annotations

from example_flows.config import MissingConfigError, configured_connection
from example_flows.tests.conftest import PASSWORD
from pytest_prefect_flows import UnknownBlockError, assert_completed, assert_failed, assert_task_failed


def test_builds_the_connection_from_variable_and_secret(run_flow, configured):
    run = run_flow(configured_connection)

    assert_completed(run)
    assert run.result() == "postgresql+psycopg://etl:***@db.internal.test:6432/warehouse"


def test_the_password_never_reaches_logs_results_or_parameters(run_flow, configured, prefect_logs):
    run = run_flow(configured_connection)

    assert_completed(run)
    assert prefect_logs.messages, "the flow logs where it connects"
    assert not [message for message in prefect_logs.messages if PASSWORD in message]
    assert PASSWORD not in run.result()
    assert [task_run.task_name for task_run in run.task_runs] == [
        "load_database_config",
        "build_connection_url",
    ]
    for task_run in run.task_runs:
        assert PASSWORD not in repr(task_run.parameters)


def test_a_missing_variable_fails_with_instructions(run_flow, fake_blocks):
    fake_blocks.secret("database-password", PASSWORD)

    run = run_flow(configured_connection)

    assert_failed(run, MissingConfigError, match="prefect variable set database-config")


def test_an_unknown_secret_fails_naming_the_known_ones(run_flow, configured):
    run = run_flow(configured_connection, secret_name="db-password")

    assert_task_failed(run, "build_connection_url", exc=UnknownBlockError, match="database-password")
