"""Turn each test's `RunLog` into plain data, and aggregate it per flow and task.

Everything kept here is JSON-able (dicts, lists, strings, numbers), so an xdist worker can send its
`Collector.to_data()` to the controller, which `merge`s it; totals do not depend on where tests ran.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.coverage.discovery import Definition, function_key, source_lines
from pytest_prefect_flows.hooks import hook_errors_in

if TYPE_CHECKING:
    import datetime as dt

    from pytest_prefect_flows.recording import FlowRunRecord, RunLog, StateEntry, TaskRunRecord, _RunRecord

# The states the report counts; a run "reached" Retried when any attempt was retried.
STATE_ALIASES = {
    "AwaitingRetry": "Retried",
    "Retrying": "Retried",
    "Completed": "Completed",
    "Cached": "Cached",
    "Failed": "Failed",
    "Crashed": "Crashed",
    "Cancelled": "Cancelled",
    "TimedOut": "Failed",
}
OWN_PACKAGE = "pytest_prefect_flows."
REPORTED_STATES = ("Completed", "Failed", "Retried", "Cached", "Crashed", "Cancelled")


def reached_states(states: list[str]) -> list[str]:
    """The reported states (`REPORTED_STATES`) among a run's state names, each once."""
    reached = {STATE_ALIASES[name] for name in states if name in STATE_ALIASES}
    return [name for name in REPORTED_STATES if name in reached]


@dataclass
class Usage:
    """How often one flow or task ran across the session, and what it went through."""

    key: str
    kind: str
    name: str
    module: str = ""
    runs: int = 0
    states: dict[str, int] = field(default_factory=dict)
    tests: list[str] = field(default_factory=list)
    retries: int = 0  # configured retries (max seen)

    @property
    def retried(self) -> bool:
        return self.states.get("Retried", 0) > 0


class Collector:
    """Per-test run data and the source location of every flow/task function seen."""

    def __init__(self, rootdir: Path | None = None) -> None:
        self.rootdir = rootdir
        self.tests: list[dict[str, Any]] = []
        self.functions: dict[str, dict[str, Any]] = {}  # key -> {file, first, last}
        self.line_coverage: dict[str, dict[str, Any]] = {}  # key -> {file, statements, executed}
        # Keys of discovered task functions seen running at all; without a task run, they ran directly.
        self.executed: set[str] = set()

    def add_test(
        self, nodeid: str, outcome: str, run_log: RunLog, sweeps: list[dict[str, Any]] | None = None
    ) -> None:
        """Record the runs one test made (nothing when it ran no flow), and its fault sweeps."""
        top_level = run_log.top_level
        # Task runs started outside any flow run (a task called from a test or from `flow.fn()`).
        standalone = [run for run in run_log.task_runs if run.flow_run_id is None]
        if not top_level and not standalone:
            return
        starts = [run.history[0].timestamp for run in [*top_level, *standalone] if run.history]
        origin = min(starts, default=None)
        entry: dict[str, Any] = {
            "nodeid": nodeid,
            "outcome": outcome,
            "started_at": origin.isoformat() if origin else None,
            "flow_runs": [self._flow_run(run, origin) for run in top_level],
        }
        if sweeps:
            entry["sweeps"] = sweeps
        if standalone:
            entry["task_runs"] = [self._task_run(run, origin) for run in standalone]
        self.tests.append(entry)

    def _flow_run(self, run: FlowRunRecord, origin: dt.datetime | None) -> dict[str, Any]:
        data = self._run(run, "flow", run.flow, run.flow_name, origin)
        data["task_runs"] = [self._task_run(task_run, origin) for task_run in run.task_runs]
        data["subflows"] = [self._flow_run(subflow, origin) for subflow in run.subflows]
        data["hook_errors"] = [failure.to_data() for failure in hook_errors_in(run.logs)]
        if run.artifacts:
            data["artifacts"] = [artifact.to_data() for artifact in run.artifacts]
        return data

    def _task_run(self, run: TaskRunRecord, origin: dt.datetime | None) -> dict[str, Any]:
        data = self._run(run, "task", run.task, run.task_name, origin, fallback_key=run.task_key)
        data["cached"] = run.cached
        return data

    def _run(
        self,
        run: _RunRecord,
        kind: str,
        obj: Any,
        label: str,
        origin: dt.datetime | None,
        fallback_key: str = "",
    ) -> dict[str, Any]:
        key = function_key(obj, self.rootdir) if obj is not None else None
        if key is not None:
            self._remember_function(key, obj)
        return {
            "kind": kind,
            "module": getattr(getattr(obj, "fn", None), "__module__", None),
            "id": run.id,
            "name": run.name,
            "label": label,
            "key": key or f"?:{fallback_key or label}",
            "state": run.state_name,
            "states": run.states,
            "retries": int(getattr(obj, "retries", 0) or 0),
            "attempts": attempt_segments(run.history, origin),
        }

    def _remember_function(self, key: str, obj: Any) -> None:
        if key in self.functions:
            return
        lines = source_lines(obj)
        filename = _source_file(obj)
        if lines is not None and filename is not None:
            self.functions[key] = {"file": filename, "first": lines[0], "last": lines[1]}

    def remember_definitions(self, definitions: list[Definition]) -> None:
        """Also measure line coverage of discovered functions that never ran in a flow."""
        for definition in definitions:
            if definition.key not in self.functions and definition.lines is not None:
                first, last = definition.lines
                self.functions[definition.key] = {"file": definition.file, "first": first, "last": last}

    def measure_lines(self) -> None:
        """Snapshot coverage.py's data for each known function (no-op when coverage is off)."""
        from pytest_prefect_flows.coverage.lines import measure, merge_lines

        self.line_coverage = merge_lines(self.line_coverage, measure(self.functions))

    def to_data(self) -> dict[str, Any]:
        return {
            "tests": self.tests,
            "functions": self.functions,
            "line_coverage": self.line_coverage,
            "executed": sorted(self.executed),
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add what another process (an xdist worker) collected."""
        from pytest_prefect_flows.coverage.lines import merge_lines

        self.tests.extend(data["tests"])
        for key, value in data["functions"].items():
            self.functions.setdefault(key, value)
        self.line_coverage = merge_lines(self.line_coverage, data["line_coverage"])
        self.executed.update(data["executed"])

    def usage(self) -> dict[str, Usage]:
        """Per flow/task key: runs, states reached (counted per run) and the tests that ran it."""
        usage: dict[str, Usage] = {}
        for test in sorted(self.tests, key=lambda entry: entry["nodeid"]):
            for run in runs_of(test):
                if (run.get("module") or "").startswith(OWN_PACKAGE):
                    continue  # wrapper flows of pytest-prefect-flows itself (e.g. idempotency checks)
                item = usage.setdefault(
                    run["key"], Usage(run["key"], run["kind"], run["label"], run.get("module") or "")
                )
                item.runs += 1
                item.retries = max(item.retries, run["retries"])
                for state in reached_states(run["states"]):
                    item.states[state] = item.states.get(state, 0) + 1
                if test["nodeid"] not in item.tests:
                    item.tests.append(test["nodeid"])
        return usage


def runs_of(test: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every run a test made: its flow runs' trees, then its task runs outside any flow run."""
    yield from iter_runs(test["flow_runs"])
    yield from test.get("task_runs", [])


def iter_runs(flow_runs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every flow run, subflow run and task run in a test's run tree."""
    for flow_run in flow_runs:
        yield flow_run
        yield from flow_run["task_runs"]
        yield from iter_runs(flow_run["subflows"])


def attempt_segments(history: list[StateEntry], origin: dt.datetime | None) -> list[dict[str, Any]]:
    """One segment per attempt: its final state and start/end in seconds from the test's first run."""
    by_attempt: dict[int, list[StateEntry]] = {}
    for entry in history:
        by_attempt.setdefault(entry.attempt, []).append(entry)
    if len(by_attempt) > 1:
        by_attempt.pop(0, None)  # Pending/Scheduled before the first attempt
    attempts = sorted(by_attempt.items())
    segments = []
    for index, (attempt, entries) in enumerate(attempts):
        running = [entry for entry in entries if entry.type == "RUNNING"]
        last = entries[-1]
        end, state = last.timestamp, last.name
        if index + 1 < len(attempts) and last.type == "RUNNING":
            # Retried without a delay: Prefect goes from Running straight to Retrying.
            end, state = attempts[index + 1][1][0].timestamp, "Retried"
        segments.append(
            {
                "attempt": max(attempt, 1),
                "state": state,
                "message": last.message,
                "start": _offset((running or entries)[0].timestamp, origin),
                "end": _offset(end, origin),
            }
        )
    return segments


def _offset(timestamp: dt.datetime, origin: dt.datetime | None) -> float:
    return round((timestamp - origin).total_seconds(), 6) if origin is not None else 0.0


def _source_file(obj: Any) -> str | None:
    try:
        return inspect.getsourcefile(inspect.unwrap(getattr(obj, "fn", obj)))
    except TypeError:
        return None
