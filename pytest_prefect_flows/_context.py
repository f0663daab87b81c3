"""Where the calling code runs, without importing Prefect."""

from __future__ import annotations

import sys
from typing import Any


def in_flow_or_task_run() -> bool:
    """Whether the calling code runs inside a Prefect flow or task run (flow or task code)."""
    context: Any = sys.modules.get("prefect.context")
    if context is None:
        return False
    return context.FlowRunContext.get() is not None or context.TaskRunContext.get() is not None


def current_run_name() -> str | None:
    """`task run 'x'` or `flow run 'y'` for the run the calling code runs in, else None."""
    context: Any = sys.modules.get("prefect.context")
    if context is None:
        return None
    task_run = context.TaskRunContext.get()
    if task_run is not None:
        return f"task run {task_run.task_run.name!r}"
    flow_run = context.FlowRunContext.get()
    if flow_run is not None and flow_run.flow_run is not None:
        return f"flow run {flow_run.flow_run.name!r}"
    return None
