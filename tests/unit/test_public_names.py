"""The public names as type checkers and fixture users see them."""

from __future__ import annotations

import ast
import collections.abc
import inspect
import typing
from pathlib import Path

import pytest

import pytest_prefect_flows
from pytest_prefect_flows import plugin


def plugin_fixtures() -> dict[str, typing.Callable[..., object]]:
    """The plugin's public fixtures, as the functions they wrap (pytest >= 8.4 wraps, older marks)."""
    return {
        name: getattr(value, "__wrapped__", value)
        for name, value in vars(plugin).items()
        if not name.startswith("_")
        and (hasattr(value, "_fixture_function_marker") or hasattr(value, "_pytestfixturefunction"))
    }


@pytest.mark.parametrize("name", sorted(plugin_fixtures()))
def test_every_fixture_is_typed_with_an_exported_type(name: str) -> None:
    exported = {export: getattr(pytest_prefect_flows, export) for export in pytest_prefect_flows.__all__}
    namespace = {**vars(typing), **vars(collections.abc), "pytest": pytest, **exported}
    returned = typing.get_type_hints(plugin_fixtures()[name], localns=namespace)["return"]
    if typing.get_origin(returned) is collections.abc.Iterator:  # a yield fixture
        [returned] = typing.get_args(returned)

    assert returned is not typing.Any
    for part in typing.get_args(returned) or [returned]:  # `IsolatedBackend | RemoteBackend`
        assert part.__name__ in pytest_prefect_flows.__all__, f"{name}: export {part.__name__}"


def test_every_public_name_is_reexported_for_type_checkers() -> None:
    """mypy --strict only sees a name of `__init__.py` as exported when it is imported `as` itself."""
    tree = ast.parse(Path(inspect.getfile(pytest_prefect_flows)).read_text())
    reexported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name
    }

    assert sorted(set(pytest_prefect_flows.__all__) - reexported) == []


# Where flow code and tests import Prefect's names from.
PREFECT_API = (
    "prefect",
    "prefect.artifacts",
    "prefect.blocks.core",
    "prefect.blocks.system",
    "prefect.cache_policies",
    "prefect.concurrency.sync",
    "prefect.context",
    "prefect.deployments",
    "prefect.events",
    "prefect.flows",
    "prefect.futures",
    "prefect.logging",
    "prefect.runtime",
    "prefect.states",
    "prefect.task_runners",
    "prefect.tasks",
    "prefect.testing.utilities",
    "prefect.transactions",
    "prefect.variables",
)


def test_no_fixture_hides_a_name_of_prefects_api() -> None:
    """The naming rule: a fixture named like a Prefect name takes the `prefect_` prefix (a test
    asking for it could no longer call Prefect's function of that name). Deprecated aliases aside."""
    import importlib

    public = {
        f"{module}.{name}"
        for module in PREFECT_API
        for name in getattr(importlib.import_module(module), "__all__", [])
    }
    deprecated = {"run_deployment"}  # alias of prefect_run_deployment, removed in 0.3

    hidden = [api for api in sorted(public) if api.rpartition(".")[2] in set(plugin_fixtures()) - deprecated]
    assert hidden == []
