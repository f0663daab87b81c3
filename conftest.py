"""The repository's docs as tests, and the fixtures their code blocks may name.

README.md and the pages under docs/ are collected by Sybil (tests/docs_blocks.py): each code block
runs with only the imports it shows, plus the fixtures it names, the plugin's and those below (the
reference suite's sample data, from example_flows/tests/conftest.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

# the reference suite's fixtures, for the docs' blocks that name them
from example_flows.tests.conftest import (  # noqa: F401
    configured,
    csv_dir,
    data_dir,
    db_path,
    state_path,
    yaml_deployment,
)

ROOT = Path(__file__).parent


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    is_docs_page = file_path.suffix == ".md" and ROOT / "docs" in file_path.parents
    if file_path != ROOT / "README.md" and not is_docs_page:
        return None
    if importlib.util.find_spec("sybil") is None:
        return None  # the docs run with the dev extra; `pytest example_flows/tests` also runs without it
    from tests.docs_blocks import DOCS

    collector: pytest.Collector | None = DOCS.pytest()(file_path, parent)
    return collector


def pytest_itemcollected(item: Any) -> None:
    """A docs test's marks (`@pytest.mark.prefect(...)` in the block) apply to its item, and the test
    function is its `obj`, as on a `pytest.Function` (syrupy names the snapshots after it)."""
    example = getattr(item, "example", None)  # a Sybil item
    if example is None:
        return
    from tests.docs_blocks import BlockTest

    parsed = example.parsed
    if isinstance(parsed, BlockTest):
        item.obj = parsed.function
        for mark in parsed.marks():
            item.own_markers.append(mark)  # what add_marker does with a decorator's Mark
            item.keywords[mark.name] = mark
