"""Shared helpers for the plugin's own tests (pytester is enabled in pyproject's addopts)."""

import os

import pytest

from pytest_prefect_flows.harness import default_template_dir

# pytester points HOME at a temporary directory, so every inline session would migrate a template
# database of its own (~6 s each) in a new per-user cache: share the real user's cache instead.
# test_harness.py's template test uses an empty cache of its own.
os.environ.setdefault("PYTEST_PREFECT_FLOWS_CACHE", str(default_template_dir()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.slow` tests (real retry waits) are skipped unless selected with `-m slow`."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip_slow = pytest.mark.skip(reason="waits for real; run with -m slow")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip_slow)
