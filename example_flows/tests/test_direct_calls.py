"""Flows called directly (not through `run_flow`) are recorded too; the backend stores what ran."""

from __future__ import annotations

from pathlib import Path

from example_flows.composition import region_report
from example_flows.files import process_files
from pytest_prefect_flows import assert_completed, assert_task_not_run


def test_calling_the_flow_directly_is_recorded(prefect_runs, tmp_path: Path):
    result = process_files(tmp_path)  # a plain call returns the flow's result

    assert result["files"] == 0
    run = prefect_runs.last
    assert run.flow_name == "process-files"
    assert_completed(run)
    assert_task_not_run(run, "summarize_file")
    assert prefect_runs.find("process-files") == [run]


def test_the_backend_stored_the_run(run_flow, prefect_harness):
    run = run_flow(region_report, "apac")

    with prefect_harness.sync_client() as client:
        stored = client.read_flow_run(run.id)
    assert stored.state.is_completed()
    assert stored.parameters == {"region": "apac"}


def test_logs_by_level(run_flow, prefect_logs, tmp_path: Path):
    run_flow(process_files, tmp_path)

    warnings = prefect_logs.at_level("WARNING").messages
    assert len(warnings) == 1
    assert warnings[0].startswith("No files matching '*.csv'")
