"""Which collected modules start the isolated backend ahead of the first flow."""

from __future__ import annotations

import types

from prefect import flow, task

from pytest_prefect_flows.ready import holds_flow, uses_backend


@flow
def a_flow() -> int:
    return 1


@task
def a_task() -> int:
    return 1


def _module(name: str, **values: object) -> types.ModuleType:
    module = types.ModuleType(name)
    vars(module).update(values)
    return module


def test_a_module_holding_a_flow_directly_or_through_an_imported_module_needs_the_backend() -> None:
    assert holds_flow(_module("test_direct", etl=a_flow))
    assert holds_flow(_module("test_through", flows=_module("flows", etl=a_flow)))


def test_tasks_alone_or_no_prefect_do_not_start_it() -> None:
    assert not holds_flow(_module("test_task_fn", step=a_task, flows=_module("flows", step=a_task)))
    assert not holds_flow(_module("test_plain", os=types, value=3))


class _Item:
    def __init__(self, *fixturenames: str) -> None:
        self.fixturenames = list(fixturenames)


def test_tests_asking_for_a_backend_fixture_need_it() -> None:
    assert uses_backend([_Item("tmp_path"), _Item("run_flow")])
    assert uses_backend([_Item("prefect_harness")])
    assert not uses_backend([_Item("tmp_path", "monkeypatch"), object()])
