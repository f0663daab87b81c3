"""Text timeline of a flow run: one row per task attempt, with offsets from the flow's start."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_prefect_flows.recording import FlowRunRecord, StateEntry, _RunRecord

HEADER = ("task", "attempt", "state", "start", "duration")
Row = tuple[str, str, str, str, str]


def render_timeline(flow_run: FlowRunRecord) -> str:
    """A fixed-width table: task, attempt, state, start offset, duration (subflows indented)."""
    origin = flow_run.history[0].timestamp if flow_run.history else dt.datetime.now(dt.timezone.utc)
    rows = _rows(flow_run, origin, indent="")
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = [f"Timeline of flow run {flow_run.name!r} ({flow_run.flow_name}): {flow_run.state_name}"]
    for row in [HEADER, *rows]:
        lines.append(
            "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return "\n".join(lines)


def _rows(flow_run: FlowRunRecord, origin: dt.datetime, indent: str) -> list[Row]:
    from pytest_prefect_flows.recording import FlowRunRecord

    rows = _attempt_rows(flow_run, f"{indent}[flow] {flow_run.flow_name}", origin)
    children: list[_RunRecord] = [run for run in [*flow_run.task_runs, *flow_run.subflows] if run.history]
    for child in sorted(children, key=lambda run: run.history[0].timestamp):
        if isinstance(child, FlowRunRecord):
            rows += _rows(child, origin, indent + "  ")
        else:
            rows += _attempt_rows(child, f"{indent}  {child.name}", origin)
    return rows


def _attempt_rows(run: _RunRecord, label: str, origin: dt.datetime) -> list[Row]:
    attempts: dict[int, list[StateEntry]] = {}
    for entry in run.history:
        attempts.setdefault(entry.attempt, []).append(entry)
    if len(attempts) > 1:
        attempts.pop(0, None)  # the Pending/Scheduled state before the first attempt
    rows = []
    for attempt, entries in sorted(attempts.items()):
        running = [entry for entry in entries if entry.type == "RUNNING"]
        start = running[0].timestamp if running else entries[0].timestamp
        end = entries[-1].timestamp
        rows.append(
            (
                label,
                str(max(attempt, 1)),
                _short(_describe(run, attempt, entries[-1])),
                f"+{(start - origin).total_seconds():.3f}s",
                f"{(end - start).total_seconds():.3f}s",
            )
        )
    return rows


def _describe(run: _RunRecord, attempt: int, last: StateEntry) -> str:
    """The attempt's last state, with the error that ended it when there was one."""
    error = run.attempt_exceptions.get(attempt)
    if error is not None:
        return f"{last.name}: {type(error).__name__}: {error}"
    if last.message and last.type != "COMPLETED":
        return f"{last.name}: {last.message}"
    return last.name


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
