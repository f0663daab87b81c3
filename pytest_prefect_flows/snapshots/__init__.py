"""Snapshots of flow runs and flow structure, and recorded baselines of a whole suite.

- `tree`: a run as plain data and text (no ids, times or durations; stable order).
- `structure`: `flow_structure(flow)`, a flow's configuration without running it.
- `extension`: `PrefectRunSnapshot`, the syrupy extension (needs the `[snapshot]` extra).
- `baseline`: `--prefect-record=PATH` / `--prefect-compare=PATH`.
"""

from __future__ import annotations

import importlib.util

import pytest


def require_syrupy(config: pytest.Config) -> None:
    """Raise `MissingExtraError` saying how to get syrupy when it is missing or disabled."""
    from pytest_prefect_flows.exceptions import MissingExtraError

    if importlib.util.find_spec("syrupy") is None:
        raise MissingExtraError(
            "prefect_snapshot needs syrupy, which is not installed: "
            "pip install 'pytest-prefect-flows[snapshot]' (or pip install syrupy)."
        )
    if not config.pluginmanager.hasplugin("syrupy"):
        raise MissingExtraError(
            "prefect_snapshot needs syrupy's pytest plugin, which is disabled in this session "
            "(-p no:syrupy?); enable it, or compare runs with assert_* helpers instead."
        )
