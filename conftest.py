"""Collects the Python blocks of README.md and docs/*.md as tests (see tests/docs_examples.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".md":
        return None
    from tests.docs_examples import collect_markdown

    return collect_markdown(file_path, parent)
