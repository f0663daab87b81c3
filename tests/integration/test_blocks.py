"""The `fake_blocks` fixture as users meet it: Secrets, variables, own blocks, notification sinks."""

from __future__ import annotations

import pytest

SECURE_DATABASE = """
import pytest
from prefect import flow, get_run_logger, task
from prefect.blocks.system import Secret
from prefect.variables import Variable

CONFIG = {"host": "db.internal", "port": 5432, "user": "app", "database": "orders"}
EXPECTED = "postgresql://app:s3cr3t-VALUE@db.internal:5432/orders"


@task
def secure_database_task():
    password = Secret.load("database-password").get()
    config = Variable.get("database-config")
    get_run_logger().info("Connecting to %(host)s:%(port)s as %(user)s", config)
    return f"postgresql://{config['user']}:{password}@{config['host']}:{config['port']}/{config['database']}"


@task
async def async_secure_database_task():
    password = (await Secret.load("database-password")).get()
    assert (await Secret.aload("database-password")).get() == password
    config = await Variable.aget("database-config")
    assert await Variable.get("database-config") == config
    get_run_logger().info("Connecting to %(host)s:%(port)s as %(user)s", config)
    return f"postgresql://{config['user']}:{password}@{config['host']}:{config['port']}/{config['database']}"


@flow
def sync_pipeline():
    return secure_database_task()


@flow
async def async_pipeline():
    return await async_secure_database_task()


@pytest.fixture(autouse=True)
def database(fake_blocks):
    fake_blocks.secret("database-password", "s3cr3t-VALUE")
    fake_blocks.variable("database-config", CONFIG)


@pytest.mark.parametrize("pipeline", [sync_pipeline, async_pipeline])
def test_connection_string(run_flow, prefect_logs, pipeline):
    run = run_flow(pipeline)
    assert run.result() == EXPECTED
    assert "Connecting to db.internal:5432 as app" in prefect_logs.messages
    assert not [m for m in prefect_logs.messages if "s3cr3t-VALUE" in m]
"""


def test_secret_and_variable_feed_a_task_sync_and_async(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_secure=SECURE_DATABASE)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=2)


def test_users_own_block_loads_by_class_and_slug(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from prefect import flow
        from prefect.blocks.core import Block
        from pytest_prefect_flows import UnknownBlockError

        class Warehouse(Block):
            dsn: str

        class Bucket(Block):
            bucket: str

        @flow
        def uses_warehouse():
            return Warehouse.load("main").dsn, Block.load("warehouse/main").dsn

        @flow
        async def uses_warehouse_async():
            return (await Warehouse.aload("main")).dsn, (await Block.load("warehouse/main")).dsn

        @flow
        def wants_a_bucket():
            return Bucket.load("main").bucket

        def test_sync(fake_blocks, run_flow):
            fake_blocks.add("main", Warehouse(dsn="sqlite:///w.db"))
            assert run_flow(uses_warehouse).result() == ("sqlite:///w.db", "sqlite:///w.db")

        def test_async(fake_blocks, run_flow):
            fake_blocks.add("main", Warehouse(dsn="sqlite:///w.db"))
            assert run_flow(uses_warehouse_async).result() == ("sqlite:///w.db", "sqlite:///w.db")

        def test_wrong_class(fake_blocks, run_flow):
            fake_blocks.add("main", Warehouse(dsn="sqlite:///w.db"))
            run = run_flow(wants_a_bucket)
            assert isinstance(run.exception, UnknownBlockError)
            assert "is a Warehouse (slug 'warehouse'), not a Bucket" in str(run.exception)
        """
    )
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3)


def test_on_failure_hook_notifies_once_with_the_run_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from prefect import flow
        from prefect.blocks.notifications import SlackWebhook
        from pytest_prefect_flows import UnknownBlockError

        def notify(flow, flow_run, state):
            SlackWebhook.load("alerts").notify(f"Flow run {flow_run.name} failed", subject="nightly")

        async def notify_async(flow, flow_run, state):
            block = await SlackWebhook.load("alerts")
            await block.notify(f"Flow run {flow_run.name} failed", subject="nightly")

        @flow(on_failure=[notify])
        def nightly():
            raise RuntimeError("warehouse down")

        @flow(on_failure=[notify_async])
        async def nightly_async():
            raise RuntimeError("warehouse down")

        def test_sync_flow(fake_blocks, run_flow):
            alerts = fake_blocks.notifications("alerts")
            run = run_flow(nightly)
            assert run.state_name == "Failed"
            assert [(m.body, m.subject, m.block_type) for m in alerts.messages] == [
                (f"Flow run {run.name} failed", "nightly", "slack-webhook")
            ]
            assert run.hook_errors == []

        def test_async_flow(fake_blocks, run_flow):
            alerts = fake_blocks.notifications("alerts")
            run = run_flow(nightly_async)
            assert [m.body for m in alerts.messages] == [f"Flow run {run.name} failed"]

        def test_hook_error_is_on_the_record(fake_blocks, run_flow):
            fake_blocks.notifications("alerts-channel")
            run = run_flow(nightly)
            assert run.state_name == "Failed"
            [error] = run.hook_errors
            assert isinstance(error, UnknownBlockError)
            assert "Registered: alerts-channel (notifications)" in str(error)
        """
    )
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3)


def test_secret_value_never_reaches_the_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The value comes from the environment so that it is not in the test source a traceback shows.
    monkeypatch.setenv("DB_PASSWORD", "s3cr3t-VALUE")
    pytester.makepyfile(
        """
        import logging
        import os
        from prefect import flow, get_run_logger
        from prefect.blocks.system import Secret

        @flow
        def leaky():
            block = Secret.load("database-password")
            get_run_logger().info("loaded %r", block)
            print("printed", block)
            return block

        def test_assertion_about_the_secret_block(fake_blocks, run_flow):
            fake_blocks.secret("database-password", os.environ["DB_PASSWORD"])
            run = run_flow(leaky)
            logging.getLogger("user").warning("fakes: %r", fake_blocks)
            assert run.result() == Secret(value="other"), fake_blocks

        def test_misspelt_name(fake_blocks):
            fake_blocks.secret("database-password", os.environ["DB_PASSWORD"])
            Secret.load("database-pasword")
        """
    )
    result = pytester.runpytest_subprocess("--tb=long", "-rA", "-s", "--log-level=INFO")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*loaded Secret(value=Secret(*"])  # in the flow-run log section
    result.stdout.fnmatch_lines(
        [
            "*fakes: <FakeBlocks blocks=?database-password (secret)?*",
            "*UnknownBlockError: Secret.load('database-pasword'): no block named 'database-pasword'*",
            "E * Registered: database-password (secret)",
        ]
    )
    assert "s3cr3t-VALUE" not in result.stdout.str() + result.stderr.str()
