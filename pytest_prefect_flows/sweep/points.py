"""Fault points: every task run of a clean run, and how a later run finds the same one again.

A point is a task name and an index among that task's runs (`load`, `extract[2]`). The index
follows the snapshot tree's order (`snapshots.tree.stable_order`): runs the flow called directly in
the order they ran, submitted and mapped runs by their parameters, so `task.map(range(3))` gives
`[0]`, `[1]`, `[2]` whichever thread started first.

A later run finds the point again by what does not depend on thread scheduling: the task name, its
parameters (printed, memory addresses left out) and, among runs with equal parameters, the order
their first attempt started in (equal parameters in parallel are interchangeable). The injected
fault is a plain `FaultInjector` spec whose `when=` asks a `PointLocator` whether the attempt
belongs to the point's task run; `times=1` makes it the first attempt only, so the task's own
retries run for real.
"""

from __future__ import annotations

import dataclasses
import pprint
import re
import threading
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pytest_prefect_flows.faults import FaultInjector, FaultSpec
    from pytest_prefect_flows.recording import FlowRunRecord, TaskRunRecord

Mode = Literal["before", "after", "crash"]
MODES: tuple[Mode, ...] = ("before", "after", "crash")

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def parameters_key(parameters: dict[str, Any]) -> str:
    """The parameters as text that is equal across runs (no memory addresses)."""
    try:
        text = pprint.pformat(parameters, width=10**6, sort_dicts=True)
    except Exception:  # a value whose repr raises
        text = repr(sorted(parameters))
    return _ADDRESS.sub("", text)


@dataclasses.dataclass(frozen=True)
class FaultPoint:
    """One task run of the clean run: `task`, its `index` among that task's runs, and how to find it."""

    task: str
    index: int
    runs_of_task: int = dataclasses.field(compare=False, default=1)
    key: str = dataclasses.field(compare=False, default="", repr=False)
    occurrence: int = dataclasses.field(compare=False, default=0, repr=False)

    @property
    def label(self) -> str:
        """`load`, or `extract[2]` for a task that ran more than once."""
        return f"{self.task}[{self.index}]" if self.runs_of_task > 1 else self.task

    def __str__(self) -> str:
        return self.label


def fault_points(run: FlowRunRecord) -> list[FaultPoint]:
    """Every task run of `run` and its subflows: tasks in the order they first ran, each task's runs
    numbered in the snapshot tree's order."""
    ordered = _task_runs_in_order(run)
    started = sorted(ordered, key=_first_attempt)
    first_run = {name: number for number, name in reversed(list(enumerate(r.task_name for r in started)))}
    counts = {name: sum(1 for record in ordered if record.task_name == name) for name in first_run}
    points = []
    seen: dict[str, int] = {}
    for record in ordered:
        index = seen[record.task_name] = seen.get(record.task_name, -1) + 1
        key = parameters_key(record.parameters)
        twins = [other for other in started if other.task_name == record.task_name and _key(other) == key]
        points.append(FaultPoint(record.task_name, index, counts[record.task_name], key, twins.index(record)))
    return sorted(points, key=lambda point: (first_run[point.task], point.index))


def _key(record: TaskRunRecord) -> str:
    return parameters_key(record.parameters)


def _first_attempt(record: TaskRunRecord) -> Any:
    from pytest_prefect_flows.snapshots.tree import _start_of

    running = [entry.timestamp for entry in record.history if entry.type == "RUNNING"]
    return running[0] if running else _start_of(record)


def _task_runs_in_order(run: FlowRunRecord) -> list[TaskRunRecord]:
    from pytest_prefect_flows.recording import FlowRunRecord
    from pytest_prefect_flows.snapshots.tree import stable_order

    ordered: list[TaskRunRecord] = []
    for child in stable_order(run):
        if isinstance(child, FlowRunRecord):
            ordered += _task_runs_in_order(child)
        else:
            ordered.append(child)  # type: ignore[arg-type]
    return ordered


class PointLocator:
    """Which task run an attempt belongs to, counted per run of the flow (`new_run()` between runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order: dict[tuple[str, str], list[str]] = {}

    def new_run(self) -> None:
        with self._lock:
            self._order.clear()

    def occurrence(self, task: str, key: str) -> int:
        """The current task run's place among this run's runs of `task` with parameters `key`."""
        from prefect.context import TaskRunContext

        context = TaskRunContext.get()
        run_id = str(context.task_run.id) if context is not None else ""
        with self._lock:
            ids = self._order.setdefault((task, key), [])
            if run_id not in ids:
                ids.append(run_id)
            return ids.index(run_id)

    def matcher(self, point: FaultPoint) -> Any:
        """A `when=` predicate true for the attempts of the point's task run."""

        def at_point(parameters: dict[str, Any]) -> bool:
            key = parameters_key(parameters)
            return self.occurrence(point.task, key) == point.occurrence and key == point.key

        at_point.__name__ = f"at_{point.label}"
        return at_point

    def inject(self, injector: FaultInjector, point: FaultPoint, mode: Mode, times: int = 1) -> FaultSpec:
        """Add one fault at `point` to `injector`: before the body, after it, or a crash.

        A point with no parameters key (from a `FailurePlan`) stands for any run of its task.
        """
        when = self.matcher(point) if point.key else None
        if mode == "before":
            return injector(point.task, times=times, when=when)
        if mode == "after":
            return injector.after(point.task, times=times, when=when)
        return injector.crash(point.task, times=times, when=when)
