"""Text timeline of a flow run: one row per task attempt, with offsets from the flow's start."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_prefect_flows.recording import FlowRunRecord, TaskRunRecord, _RunRecord

HEADER = ("task", "attempt", "state", "start", "duration")


def _attempt_rows(run: _RunRecord, label: str, origin: dt.datetime) -> list[tuple[str, ...]]:
    rows = []
    attempts: dict[int, list] = {}
    for entry in run.history:
        attempts.setdefault(entry.attempt, []).append(entry)
    for attempt, entries in sorted(attempts.items()):
        if attempt == 0 and len(attempts) > 1:
            continue  # the Pending/Scheduled state before the first attempt
        running = [e for e in entries if e.type == "RUNNING"]
        start = running[0].timestamp if running else entries[0].timestamp
        end = entries[-1].timestamp
        last = entries[-1]
        state = last.name if not last.message or last.type == "COMPLETED" else f"{last.name}: {last.message}"
        rows.append(
            (
                label,
                str(max(attempt, 1)),
                _short(state),
                f"+{(start - origin).total_seconds():.3f}s",
                f"{(end - start).total_seconds():.3f}s",
            )
        )
    return rows


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_timeline(flow_run: FlowRunRecord) -> str:
    """A fixed-width table: task, attempt, state, start offset, duration (subflows indented)."""
    origin = flow_run.history[0].timestamp if flow_run.history else dt.datetime.now(dt.timezone.utc)
    rows = _rows(flow_run, origin, indent="")
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = [f"Timeline of flow run {flow_run.name!r} ({flow_run.flow_name}): {flow_run.state_name}"]
    for row in [HEADER, *rows]:
        lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _rows(flow_run: FlowRunRecord, origin: dt.datetime, indent: str) -> list[tuple[str, ...]]:
    rows = _attempt_rows(flow_run, f"{indent}[flow] {flow_run.flow_name}", origin)
    children: list[tuple[dt.datetime, TaskRunRecord | FlowRunRecord]] = [
        (run.history[0].timestamp, run) for run in [*flow_run.task_runs, *flow_run.subflows] if run.history
    ]
    for _, child in sorted(children, key=lambda item: item[0]):
        if hasattr(child, "task_runs"):
            rows += _rows(child, origin, indent + "  ")  # type: ignore[arg-type]
        else:
            rows += _attempt_rows(child, f"{indent}  {child.name}", origin)
    return rows
