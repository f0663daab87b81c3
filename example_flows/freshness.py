"""Refresh a dataset only when it is stale.

The last refresh time is kept in a small JSON state file. When the data is younger than `max_age`, the
flow returns a `Completed` state whose message says why nothing was done, so the UI (and tests) can
tell a skipped run from a refresh.
"""

# No `from __future__ import annotations`: Prefect 3.4 cannot validate flow parameters whose
# annotations are strings naming imported classes (`Path`); see docs/supported-versions.md.
import datetime as dt
import json
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.states import Completed, State


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@task(name="read_last_refresh")
def read_last_refresh(state_path: Path) -> dt.datetime | None:
    """When the data was last refreshed, or None if it never was."""
    path = Path(state_path)
    if not path.exists():
        return None
    return dt.datetime.fromisoformat(json.loads(path.read_text())["last_refresh"])


@task(name="refresh_data", retries=2, retry_delay_seconds=30)
def refresh_data(state_path: Path) -> dt.datetime:
    """Rebuild the dataset (here: only the bookkeeping) and record the refresh time."""
    refreshed_at = _utcnow()
    Path(state_path).write_text(json.dumps({"last_refresh": refreshed_at.isoformat()}))
    get_run_logger().info("Refreshed data at %s", refreshed_at.isoformat())
    return refreshed_at


@flow(name="refresh-if-stale")
def refresh_if_stale(state_path: Path, max_age_hours: float = 24.0) -> State[None] | dt.datetime:
    """Refresh when older than `max_age_hours`; otherwise a Completed state saying it was skipped."""
    last = read_last_refresh(state_path)
    if last is not None:
        age = _utcnow() - last
        if age < dt.timedelta(hours=max_age_hours):
            hours = age.total_seconds() / 3600
            get_run_logger().info("Data is fresh (%.1f h old); skipping the update", hours)
            return Completed(message=f"Skipped: data is fresh ({hours:.1f} h old, max {max_age_hours:g} h)")
    return refresh_data(state_path)
