"""Fault sweeps of the reference flows that write somewhere: wherever a task fails, the flow's own
retries or a rerun leave what a clean run leaves."""

from __future__ import annotations

from pathlib import Path

from example_flows.etl import etl_pipeline, read_orders
from example_flows.freshness import refresh_if_stale
from example_flows.tests.conftest import SOURCES


def test_the_etl_upsert_is_safe_wherever_it_fails(fault_sweep, data_dir: Path, db_path: Path):
    report = fault_sweep(
        etl_pipeline,
        list(SOURCES),
        data_dir,
        db_path,
        setup=lambda: db_path.unlink(missing_ok=True),
        observe=lambda: read_orders(db_path),
        modes=("before", "after", "crash"),
    )

    report.assert_recovered()
    assert {(point.task, point.index) for point in report.points} == {
        ("extract_source", 0),
        ("extract_source", 1),
        ("extract_source", 2),
        ("transform_records", 0),
        ("load_records", 0),
    }


def test_the_freshness_file_is_written_wherever_the_refresh_fails(fault_sweep, prefect_clock, tmp_path: Path):
    prefect_clock.freeze("2026-01-01T02:00:00Z")
    state_path = tmp_path / "orders.freshness.json"

    report = fault_sweep(
        refresh_if_stale,
        state_path,
        setup=lambda: state_path.unlink(missing_ok=True),
        observe=lambda: state_path.read_text() if state_path.exists() else None,
        modes=("before", "after", "crash"),
    )

    report.assert_recovered()
    assert len(report.points) == 6  # read_last_refresh and refresh_data, three modes each
