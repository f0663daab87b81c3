"""Fault sweep: one fault at every task run of a flow, then a clean rerun, compared with a clean run.

`FaultSweep` (the `fault_sweep` fixture) works without pytest; `engine.py` runs the scenarios,
`points.py` finds the task runs, `report.py` holds `SweepReport`, `schedules.py` the hypothesis
search of several faults.
"""

from __future__ import annotations

from pytest_prefect_flows.sweep.engine import FaultSweep
from pytest_prefect_flows.sweep.points import FaultPoint
from pytest_prefect_flows.sweep.report import Fault, SweepPoint, SweepReport

__all__ = ["Fault", "FaultPoint", "FaultSweep", "SweepPoint", "SweepReport"]
