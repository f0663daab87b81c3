"""The freshness check, under a frozen clock: refresh when stale, a Completed "skipped" state when fresh."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from example_flows.freshness import refresh_if_stale
from pytest_prefect_flows import (
    assert_completed,
    assert_retry_delays,
    assert_task_completed,
    assert_task_not_run,
    assert_task_retried,
)

START = "2026-01-01T02:00:00Z"
START_TIME = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.timezone.utc)


def test_first_run_refreshes_and_records_the_time(run_flow, prefect_clock, state_path: Path):
    prefect_clock.freeze(START)

    run = run_flow(refresh_if_stale, state_path)

    assert_completed(run)
    assert_task_completed(run, "refresh_data")
    assert run.result() == START_TIME
    assert START_TIME.isoformat() in state_path.read_text()


def test_fresh_data_is_skipped_with_a_message(run_flow, prefect_clock, state_path: Path):
    prefect_clock.freeze(START)
    run_flow(refresh_if_stale, state_path)
    prefect_clock.tick(3 * 3600)

    run = run_flow(refresh_if_stale, state_path, max_age_hours=24)

    assert_completed(run)
    assert run.state.message == "Skipped: data is fresh (3.0 h old, max 24 h)"
    assert_task_not_run(run, "refresh_data")
    assert run.result() is None


@pytest.mark.parametrize(("hours_later", "refreshed"), [(23.9, False), (24, True), (72, True)])
def test_stale_data_is_refreshed(
    run_flow, prefect_clock, state_path: Path, hours_later: float, refreshed: bool
):
    prefect_clock.freeze(START)
    run_flow(refresh_if_stale, state_path)
    prefect_clock.tick(hours_later * 3600)

    run = run_flow(refresh_if_stale, state_path, max_age_hours=24)

    assert_completed(run)
    assert bool(run.find_tasks("refresh_data")) is refreshed
    expected = START_TIME + dt.timedelta(hours=hours_later) if refreshed else START_TIME
    assert expected.isoformat() in state_path.read_text()


def test_a_failed_refresh_is_retried(run_flow, fail_task, state_path: Path):
    fail_task("refresh_data", times=1, exc=OSError("disk full"))

    run = run_flow(refresh_if_stale, state_path)

    assert_completed(run)
    assert_task_retried(run, "refresh_data", times=1)
    assert_retry_delays(run, "refresh_data", [30])
    assert state_path.exists()
