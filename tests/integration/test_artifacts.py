"""Artifacts as users meet them: `run.artifacts`, `assert_artifact`, in snapshots and the HTML report."""

from __future__ import annotations

import pytest

FLOWS = """
from prefect import flow, task
from prefect.artifacts import (
    acreate_markdown_artifact, create_markdown_artifact, create_progress_artifact,
    create_table_artifact, update_progress_artifact,
)

@task
def summarize(rows):
    create_markdown_artifact(f"# Daily report\\n{len(rows)} rows", key="daily-report", description="totals")
    return len(rows)

@flow
def publish(rows):
    create_table_artifact(rows, key="rows")

@flow
def report(rows: list[dict]):
    progress = create_progress_artifact(0.0, key="progress")
    count = summarize(rows)
    publish(rows)
    update_progress_artifact(progress, 100.0)
    return count

@flow
async def async_report():
    await acreate_markdown_artifact("done", key="async-report")
"""

TESTS = """
import pytest
from flows import async_report, report
from pytest_prefect_flows import ArtifactRecord, assert_artifact, render_run

ROWS = [{"name": "alice", "amount": 3}]

def test_records(run_flow):
    run = run_flow(report, ROWS)
    progress, markdown = run.artifacts
    assert (progress.key, progress.type, progress.data) == ("progress", "progress", 100.0)
    assert progress.task_run is None
    assert isinstance(markdown, ArtifactRecord)
    assert (markdown.key, markdown.type, markdown.description) == ("daily-report", "markdown", "totals")
    assert markdown.data == "# Daily report\\n1 rows"
    assert markdown.task_run is run.task("summarize")
    assert [a.key for a in run.subflows[0].artifacts] == ["rows"]
    assert "async-report" in [a.key for a in run_flow(async_report).artifacts]

def test_assert_artifact_passes(run_flow):
    run = run_flow(report, ROWS)
    found = assert_artifact(run, key="daily-report", type="markdown", contains="1 rows")
    assert found.description == "totals"
    assert assert_artifact(run, type="table", contains="alice").key == "rows"
    assert_artifact(run)

def test_assert_artifact_fails(run_flow):
    assert_artifact(run_flow(report, ROWS), key="daily-report", type="table")

def test_snapshot_tree(run_flow):
    text = render_run(run_flow(report, ROWS), include=("artifacts",))
    assert "      artifact markdown 'daily-report': '# Daily report\\\\n1 rows'" in text.splitlines(), text
    assert "    artifact progress 'progress': 100.0" in text.splitlines(), text
    assert "artifact table 'rows'" in render_run(run_flow(report, ROWS))
"""


def test_artifacts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=FLOWS, test_report=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--prefect-report=html:report.html")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E * AssertionError: Flow run '*' (report) created no artifact like that: "
            "3 artifact(s), none matching.",
            "E *  expected: an artifact: key='daily-report' type='table'",
            "E *  actual:   key='progress' type='progress': 100.0",
            "E *    key='daily-report' type='markdown' (task run summarize-*): # Daily report\\n1 rows",
            "E *    key='rows' type='table': [[]{*alice*}[]]",
        ],
        consecutive=True,
    )
    page = (pytester.path / "report.html").read_text()
    assert "markdown <b>daily-report</b> from summarize-" in page
    assert "table <b>rows</b> from " in page
