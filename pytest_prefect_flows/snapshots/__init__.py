"""Snapshots of flow runs and flow structure, and recorded baselines of a whole suite.

- `tree`: a run as plain data and text (no ids, times or durations; stable order).
- `structure`: `flow_structure(flow)`, a flow's configuration without running it.
- `extension`: `PrefectRunSnapshot`, the syrupy extension (needs the `[snapshot]` extra).
- `baseline`: `--prefect-record=PATH` / `--prefect-compare=PATH`.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Protocol

import pytest


class PrefectSnapshot(Protocol):
    """What the `prefect_snapshot` fixture is (syrupy's `SnapshotAssertion` using `PrefectRunSnapshot`),
    for annotations that import no syrupy: `def test_etl(run_flow, prefect_snapshot: PrefectSnapshot)`."""

    def __eq__(self, other: object) -> bool: ...

    def __call__(
        self,
        *,
        diff: Any = None,
        diff_data: Any = None,
        exclude: Any = None,
        include: Any = None,
        extension_class: Any = None,
        matcher: Any = None,
        name: Any = None,
    ) -> PrefectSnapshot: ...

    def use_extension(self, extension_class: Any = None) -> PrefectSnapshot: ...

    def with_defaults(
        self, *, exclude: Any = None, include: Any = None, matcher: Any = None, extension_class: Any = None
    ) -> PrefectSnapshot: ...


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
