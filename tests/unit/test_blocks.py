"""FakeBlocks as a plain context manager: what flows see through Block.load and Variable while active."""

from __future__ import annotations

import asyncio

import pytest
from prefect import flow, task
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.blocks.notifications import SlackWebhook
from prefect.blocks.system import Secret
from prefect.variables import Variable

from pytest_prefect_flows.blocks import FakeBlocks, Message, RecordingNotification
from pytest_prefect_flows.exceptions import UnknownBlockError, UsageError

PASSWORD = "s3cr3t-Pa55"


class Warehouse(Block):
    dsn: str
    schema_name: str = "public"


class FakeWarehouse(Warehouse):
    """A test double that loads wherever the flow asks for a Warehouse."""


class Bucket(Block):
    bucket: str


@task
def read_password() -> str:
    return str(Secret.load("database-password").get())


@flow
def sync_secret_flow() -> tuple[str, str]:
    return read_password(), Secret.load("database-password").get()


@flow
async def async_secret_flow() -> tuple[str, str, object]:
    loaded = await Secret.load("database-password")
    aloaded = await Secret.aload("database-password")
    config = await Variable.get("database-config")
    return loaded.get(), aloaded.get(), config


def test_secret_loads_in_sync_flow_and_task() -> None:
    with FakeBlocks() as blocks:
        blocks.secret("database-password", PASSWORD)
        assert sync_secret_flow() == (PASSWORD, PASSWORD)


def test_secret_and_variable_load_in_async_flow() -> None:
    with FakeBlocks(secrets={"database-password": PASSWORD}, variables={"database-config": {"port": 5432}}):
        assert asyncio.run(async_secret_flow()) == (PASSWORD, PASSWORD, {"port": 5432})


def test_slug_name_loads_through_block_base_class() -> None:
    with FakeBlocks() as blocks:
        blocks.secret("database-password", PASSWORD)
        blocks.add("warehouse", Warehouse(dsn="sqlite://"))
        assert Block.load("secret/database-password").get() == PASSWORD
        assert Block.load("warehouse/warehouse").dsn == "sqlite://"


def test_plain_name_on_block_base_class_asks_for_a_slug() -> None:
    with FakeBlocks() as blocks:
        blocks.secret("database-password", PASSWORD)
        with pytest.raises(UnknownBlockError, match=r"Block\.load\('secret/database-password'\)"):
            Block.load("database-password")


def test_user_block_loads_as_the_same_instance() -> None:
    warehouse = Warehouse(dsn="postgresql://db")
    with FakeBlocks() as blocks:
        blocks.add("warehouse", warehouse)
        assert Warehouse.load("warehouse") is warehouse


def test_test_double_subclass_loads_through_parent_class() -> None:
    with FakeBlocks() as blocks:
        double = blocks.add("warehouse", FakeWarehouse(dsn="memory://"))
        assert Warehouse.load("warehouse") is double
        assert Block.load("warehouse/warehouse") is double


def test_loading_with_another_block_class_names_both_types() -> None:
    with FakeBlocks() as blocks:
        blocks.add("warehouse", Warehouse(dsn="sqlite://"))
        with pytest.raises(UnknownBlockError) as info:
            Bucket.load("warehouse")
    message = str(info.value)
    assert "is a Warehouse (slug 'warehouse'), not a Bucket" in message
    assert "Warehouse.load(" in message


def test_slug_of_another_block_type_is_rejected() -> None:
    with FakeBlocks() as blocks:
        blocks.add("warehouse", Warehouse(dsn="sqlite://"))
        with pytest.raises(UnknownBlockError, match="not block type 'bucket'"):
            Block.load("bucket/warehouse")


def test_unknown_name_lists_registered_names_never_values() -> None:
    with FakeBlocks() as blocks:
        blocks.secret("database-password", PASSWORD)
        blocks.notifications("alerts")
        with pytest.raises(UnknownBlockError) as info:
            Secret.load("database-pasword")
    message = str(info.value)
    assert "Secret.load('database-pasword')" in message
    assert "Did you mean 'database-password'?" in message
    assert "Registered: database-password (secret), alerts (notifications)" in message
    assert PASSWORD not in message


def test_variable_get_returns_a_fresh_copy_sync_and_async() -> None:
    config = {"host": "db", "ports": [5432]}

    @flow
    def mutate() -> object:
        Variable.get("database-config")["ports"].append(1)  # type: ignore[index]
        return Variable.get("database-config")

    @flow
    async def read() -> object:
        return await Variable.aget("database-config")

    with FakeBlocks() as blocks:
        blocks.variable("database-config", config)
        config["host"] = "changed after registering"
        assert mutate() == {"host": "db", "ports": [5432]}
        assert asyncio.run(read()) == {"host": "db", "ports": [5432]}


def test_variable_set_in_a_flow_is_visible_to_later_gets() -> None:
    @flow
    def remember() -> None:
        Variable.set("last_run", "2026-01-01")
        Variable.set("last_run", "2026-01-02", overwrite=True)

    with FakeBlocks() as blocks:
        remember()
        assert Variable.get("last_run") == "2026-01-02"
        assert blocks.variable_names == ["last_run"]
        with pytest.raises(ValueError, match=r"already exists\. Use `overwrite=True`"):
            Variable.set("last_run", "again")
        assert Variable.unset("last_run") is True
        assert Variable.unset("last_run") is False


def test_async_variable_set_and_unset() -> None:
    @flow
    async def roundtrip() -> tuple[object, bool, object]:
        await Variable.aset("counter", 3)
        value = await Variable.get("counter")
        removed = await Variable.unset("counter")
        return value, removed, await Variable.aget("counter", default="gone")

    with FakeBlocks():
        assert asyncio.run(roundtrip()) == (3, True, "gone")


def test_unknown_variable_without_default_fails_with_the_names() -> None:
    with FakeBlocks(variables={"database-config": {}}):
        assert Variable.get("database-conifg", default=None) is None
        with pytest.raises(UnknownBlockError) as info:
            Variable.get("database-conifg")
    assert "Did you mean 'database-config'?" in str(info.value)
    assert "Registered variables: database-config" in str(info.value)


def test_block_saved_in_a_flow_loads_later_in_the_test() -> None:
    @flow
    def save_bucket() -> None:
        Bucket(bucket="raw").save("landing")

    with FakeBlocks() as blocks:
        save_bucket()
        assert Bucket.load("landing").bucket == "raw"
        assert blocks.names == ["landing"]
        with pytest.raises(ValueError, match="overwrite=True"):
            Bucket(bucket="other").save("landing")
        Bucket(bucket="other").save("landing", overwrite=True)
        assert Bucket.load("landing").bucket == "other"


def test_notification_sink_records_sync_notify_with_block_type() -> None:
    @flow
    def alert() -> None:
        SlackWebhook.load("alerts").notify("disk full", subject="ops")

    with FakeBlocks() as blocks:
        sink = blocks.notifications("alerts")
        alert()
    assert sink.messages == [Message("disk full", "ops", "slack-webhook")]


def test_notification_sink_records_async_notify() -> None:
    @flow
    async def alert() -> None:
        block = await NotificationBlock.load("alerts")
        await block.notify("async body")
        slug_block = await Block.aload("slack-webhook/alerts")
        await slug_block.anotify("by slug")

    with FakeBlocks() as blocks:
        sink = blocks.notifications("alerts")
        asyncio.run(alert())
    assert [(m.body, m.subject, m.block_type) for m in sink.messages] == [
        ("async body", None, "notificationblock"),
        ("by slug", None, "slack-webhook"),
    ]


def test_notification_sink_does_not_load_as_another_block_type() -> None:
    with FakeBlocks() as blocks:
        blocks.notifications("alerts")
        loaded = SlackWebhook.load("alerts")
        with pytest.raises(UnknownBlockError, match="loads only through a NotificationBlock subclass"):
            Secret.load("alerts")
        with pytest.raises(UnknownBlockError, match="not Secret"):
            Block.load("secret/alerts")
    assert isinstance(loaded, RecordingNotification)
    assert isinstance(loaded, NotificationBlock)


def test_reprs_never_show_the_secret() -> None:
    with FakeBlocks() as blocks:
        secret = blocks.secret("database-password", PASSWORD)
        blocks.variable("database-config", {"user": "app"})
        blocks.notifications("alerts")
        texts = [repr(blocks), str(blocks), repr(secret), str(Secret.load("database-password"))]
    assert texts[0].startswith("<FakeBlocks blocks=[database-password (secret), alerts (notifications)]")
    assert all(PASSWORD not in text for text in texts)


def test_json_secret_value_loads_like_prefect() -> None:
    with FakeBlocks(secrets={"api-token": {"token": PASSWORD}}):
        assert Secret.load("api-token").get() == {"token": PASSWORD}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda b: b.secret("Database Password", "x"),
            r"'Database Password' is not a valid Prefect block name",
        ),
        (lambda b: b.variable("db/config", 1), r"'db/config' is not a valid Prefect variable name"),
        (
            lambda b: b.add("warehouse", {"dsn": "x"}),
            r"takes a prefect Block instance.*fake_blocks\.variable",
        ),
        (lambda b: b.add("warehouse", Warehouse), r"got the class; pass an instance"),
        (lambda b: b.variable("when", object()), r"<object>\): a Prefect variable holds a JSON-like value"),
    ],
)
def test_bad_registrations_are_usage_errors(call: object, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        call(FakeBlocks())  # type: ignore[operator]


def test_bad_secret_value_error_does_not_echo_it() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return PASSWORD

    with pytest.raises(UsageError) as info:
        FakeBlocks().secret("token", Opaque())
    assert PASSWORD not in str(info.value)
    assert "fake_blocks.secret('token', <Opaque>)" in str(info.value)


def test_exit_restores_prefect_and_forgets_everything() -> None:
    original_load = Block.__dict__["load"]
    original_get = Variable.__dict__["get"]
    with FakeBlocks() as blocks:
        blocks.secret("database-password", PASSWORD)
        blocks.variable("database-config", {})
        assert Block.__dict__["load"] is not original_load
    assert Block.__dict__["load"] is original_load
    assert Variable.__dict__["get"] is original_get
    assert blocks.names == []
    assert blocks.variable_names == []


def test_nested_fakes_shadow_and_unwind() -> None:
    with FakeBlocks(secrets={"token": "outer"}, variables={"region": "eu"}):
        with FakeBlocks(secrets={"token": "inner"}):
            assert Secret.load("token").get() == "inner"
            assert Variable.get("region") == "eu"
        assert Secret.load("token").get() == "outer"


def test_entering_the_same_fakes_twice_is_an_error() -> None:
    fakes = FakeBlocks()
    with fakes, pytest.raises(UsageError, match="already active"):
        fakes.__enter__()
