"""Which task functions ran at all, to tell "tested through `task.fn(...)`" from "never run".

A task whose function ran but never as a task run has the status `direct` in the report. On Python
3.12+ the functions are watched with `sys.monitoring`: a callback on each code object's first
start, disabled right after, so the cost is one call per function the process ever runs. On
Python 3.10 and 3.11 (no `sys.monitoring`) the line data of a running coverage.py
(`pytest --cov`) says the same; without it a task called only directly shows as not run.

Works without pytest::

    with FunctionWatch({("/src/flows/etl.py", 12): "flows/etl.py:12"}) as watch:
        etl.extract.fn()
    watch.ran  # {"flows/etl.py:12"}
"""

from __future__ import annotations

import os
import sys
from types import CodeType
from typing import Any

# sys.monitoring tool ids left to other tools: debugger 0, coverage 1, profiler 2, optimizer 5.
_TOOL_IDS = (4, 3)
_TOOL_NAME = "pytest-prefect-flows"


class FunctionWatch:
    """Records the keys of the watched functions whose code started (Python 3.12+)."""

    def __init__(self, functions: dict[tuple[str, int], str]) -> None:
        self.functions = {(os.path.realpath(file), line): key for (file, line), key in functions.items()}
        self.names = {os.path.basename(file) for file, _ in self.functions}
        self.ran: set[str] = set()
        self._tool: int | None = None

    @property
    def available(self) -> bool:
        return hasattr(sys, "monitoring")

    def __enter__(self) -> FunctionWatch:
        monitoring: Any = getattr(sys, "monitoring", None)
        if monitoring is None or not self.functions:
            return self
        tool = next((tool for tool in _TOOL_IDS if monitoring.get_tool(tool) is None), None)
        if tool is None:
            return self  # every spare id taken: fall back to coverage.py's data
        monitoring.use_tool_id(tool, _TOOL_NAME)
        monitoring.register_callback(tool, monitoring.events.PY_START, self._started)
        monitoring.set_events(tool, monitoring.events.PY_START)
        self._tool = tool
        return self

    def _started(self, code: CodeType, offset: int) -> Any:
        if os.path.basename(code.co_filename) in self.names:
            key = self.functions.get((os.path.realpath(code.co_filename), code.co_firstlineno))
            if key is not None:
                self.ran.add(key)
        return sys.monitoring.DISABLE  # type: ignore[attr-defined]

    def __exit__(self, *exc_info: object) -> None:
        if self._tool is None:
            return
        monitoring: Any = sys.monitoring  # type: ignore[attr-defined]
        monitoring.set_events(self._tool, 0)
        monitoring.register_callback(self._tool, monitoring.events.PY_START, None)
        monitoring.free_tool_id(self._tool)
        self._tool = None


def ran_per_line_coverage(line_coverage: dict[str, dict[str, Any]], keys: set[str]) -> set[str]:
    """Keys among `keys` whose body coverage.py saw executing (any line after the `def`)."""
    return {key for key in keys if key in line_coverage and line_coverage[key]["executed"]}
