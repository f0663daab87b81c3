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
