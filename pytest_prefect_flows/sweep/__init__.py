"""Fault sweep: one fault at every task run of a flow, then a clean rerun, compared with a clean run.

`FaultSweep` (the `fault_sweep` fixture) works without pytest; `engine.py` runs the scenarios,
`points.py` finds the task runs, `report.py` holds `SweepReport`, `schedules.py` the hypothesis
search of several faults, `terminal.py` the report section and `-v` summary. Names load on first
use, so the plugin's wiring (`terminal.py`) imports no engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_prefect_flows.sweep.engine import FaultSweep
    from pytest_prefect_flows.sweep.points import FaultPoint
    from pytest_prefect_flows.sweep.report import Fault, SweepPoint, SweepReport

_EXPORTS = {
    "Fault": "report",
    "FaultPoint": "points",
    "FaultSweep": "engine",
    "SweepPoint": "report",
    "SweepReport": "report",
}

__all__ = ["Fault", "FaultPoint", "FaultSweep", "SweepPoint", "SweepReport"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_prefect_flows.sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pytest_prefect_flows.sweep.{module}"), name)
