"""The isolated Prefect backend, under its first-round name: see `pytest_prefect_flows.backend`.

Kept so that imports of `pytest_prefect_flows.harness` keep working; new code imports from
`pytest_prefect_flows.backend`.
"""

from __future__ import annotations

from pytest_prefect_flows import backend as _backend
from pytest_prefect_flows.backend import *  # noqa: F403

__all__ = _backend.__all__
