"""Dynamic mapping: one `summarize_file` run per file found at run time, then one aggregate."""

from __future__ import annotations

from pathlib import Path

from example_flows.files import process_files
from pytest_prefect_flows import (
    assert_completed,
    assert_failed,
    assert_logged,
    assert_task_completed,
    assert_task_failed,
    assert_task_not_run,
    assert_task_order,
)


def test_maps_one_task_run_per_file(run_flow, csv_dir: Path):
    run = run_flow(process_files, csv_dir)

    assert_completed(run)
    summaries = run.tasks("summarize_file")
    assert sorted(task_run.parameters["path"].name for task_run in summaries) == [
        "2026-01-01.csv",
        "2026-01-02.csv",
        "2026-01-03.csv",
    ]
    assert_task_completed(run, "summarize_file")
    assert_task_order(run, ["list_files", "summarize_file", "aggregate"])
    assert run.result() == {
        "files": 3,
        "rows": 3,
        "total": 115.0,
        "per_file": {"2026-01-01.csv": 15.0, "2026-01-02.csv": 100.0, "2026-01-03.csv": 0.0},
    }


def test_an_empty_directory_aggregates_nothing(run_flow, tmp_path: Path):
    run = run_flow(process_files, tmp_path)

    assert_completed(run)
    assert_task_not_run(run, "summarize_file")
    assert_logged(run, r"No files matching '\*\.csv'", level="WARNING")
    assert run.result()["files"] == 0


def test_a_broken_file_fails_its_own_task_run_and_the_flow(run_flow, csv_dir: Path):
    (csv_dir / "2026-01-04.csv").write_text("order,total\n4,1\n")

    run = run_flow(process_files, csv_dir)

    assert_failed(run, KeyError, match="amount")
    by_file = {task_run.parameters["path"].name: task_run for task_run in run.tasks("summarize_file")}
    assert_task_failed(run, by_file["2026-01-04.csv"], exc=KeyError, match="amount")
    assert by_file["2026-01-04.csv"].attempts == 2  # retries=1
    assert_task_completed(run, by_file["2026-01-01.csv"])
    assert_task_not_run(run, "aggregate")
