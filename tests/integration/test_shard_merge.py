"""CI shards: pytest-split runs the suite in three groups, each writes its JSON report, and
`python -m pytest_prefect_flows merge` applies the gates to what the three ran together."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FLOWS = """
from prefect import flow, task

@task(retries=1, retry_delay_seconds=0)
def extract() -> int:
    return 1

@task
def transform(value: int) -> int:
    return value + 1

@task
def load(value: int) -> int:
    return value

@task
def archive() -> None:
    pass

@flow
def extract_flow() -> int:
    return extract()

@flow
def transform_flow() -> int:
    return transform(1)

@flow
def load_flow() -> int:
    return load(2)

@flow
def archive_flow() -> None:
    archive()
"""

TESTS = """
from flows.etl import extract_flow, load_flow, transform_flow

def test_extract_retries(fail_task):
    fail_task("extract", times=1)
    assert extract_flow() == 1

def test_transform():
    assert transform_flow() == 2

def test_load():
    assert load_flow() == 2
"""

NEVER_RUN = "never run: archive (flows/etl.py:*)"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyprojecttoml(
        "[tool.pytest.ini_options]\n"
        'testpaths = ["tests"]\n'
        'prefect_flow_paths = ["flows"]\n'
        'prefect_cov_fail_under = "75"\n'
        "prefect_require_retry_tested = true\n"
    )
    pytester.mkpydir("flows").joinpath("etl.py").write_text(FLOWS)
    pytester.mkdir("tests").joinpath("test_etl.py").write_text(TESTS)
    return pytester


def run_shard(project: pytest.Pytester, group: int, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess(
        "--splits=3", f"--group={group}",
        f"--prefect-report=json:shard-{group}.json", *args,
    )  # fmt: skip


def merge(project: pytest.Pytester, *args: str | Path) -> pytest.RunResult:
    return project.run(sys.executable, "-m", "pytest_prefect_flows", "merge", *args)


def test_three_shards_merged_pass_the_gates_none_passes_alone(project: pytest.Pytester) -> None:
    for group in (1, 2, 3):
        shard = run_shard(project, group)
        shard.assert_outcomes(passed=1)
        assert shard.ret == 0
        shard.stdout.fnmatch_lines(
            [f"prefect gates skipped (*): pytest-split runs group {group} of 3 (*merge*"]
        )
    forced = run_shard(project, 1, "--prefect-gates=always")
    assert forced.ret == 1
    one_shard = (
        "FAILED --prefect-cov-fail-under=75: 1 of 4 discovered tasks ran (25.0%, required 75%); never run: *"
    )
    forced.stdout.fnmatch_lines([one_shard])

    gates = ["--fail-under=75", "--require-retry-tested"]
    for group in (1, 2, 3):
        alone = merge(project, f"shard-{group}.json", *gates)
        assert alone.ret == 1, alone.stdout.str()
        alone.stdout.fnmatch_lines([one_shard])

    # the import check alone (no test collected) writes a report of its own, merged with the shards'
    project.runpytest_subprocess("--prefect-check-imports", "--prefect-report=json:imports.json")
    reports = ["shard-1.json", "shard-2.json", "shard-3.json", "imports.json"]
    merged = merge(project, *reports, *gates, "--check-imports", "--report=term", "--report=json:merged.json")
    assert merged.ret == 0, merged.stdout.str() + merged.stderr.str()
    merged.stdout.fnmatch_lines(
        [
            "prefect flow coverage: 4 reports merged*",
            "flows: tasks run 3/4 (75.0%), flows run 3/4; 3 flow runs, 3 task runs in 3 tests",
            "never run: 1 flows, 1 tasks",
            "*archive*NOT RUN",
            "PASSED --prefect-cov-fail-under=75: 3 of 4 discovered tasks ran (75.0%, required 75%); "
            + NEVER_RUN,
            "PASSED --prefect-require-retry-tested: 1 of 1 tasks with retries were seen retrying",
            "prefect import check passed: 2 modules, 4 flows",
            "json report written to *merged.json",
        ]
    )
    report = json.loads(project.path.joinpath("merged.json").read_text())
    assert sorted(test["nodeid"] for test in report["tests"]) == [
        "tests/test_etl.py::test_extract_retries",
        "tests/test_etl.py::test_load",
        "tests/test_etl.py::test_transform",
    ]
    extract = next(task for task in report["tasks"] if task["name"] == "extract")
    assert extract["states"] == {"Completed": 1, "Retried": 1}

    refused = merge(project, "shard-1.json", "shard-2.json", "shard-1.json")
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(
        ["ERROR: tests/test_etl.py::* is in both shard-1.json and shard-1.json: shards run disjoint parts *"]
    )

    uncovered = merge(project, "shard-1.json", "shard-2.json", "shard-3.json", "--fail-under=100")
    assert uncovered.ret == 1
    uncovered.stdout.fnmatch_lines(
        ["FAILED --prefect-cov-fail-under=100: 3 of 4 * required 100%); " + NEVER_RUN]
    )


def test_reports_of_different_commits_or_flow_paths_are_refused(project: pytest.Pytester) -> None:
    def git(*args: str) -> str:
        identity = ["-c", "user.name=shard", "-c", "user.email=shard@example.invalid"]
        done = subprocess.run(["git", *identity, *args], cwd=project.path, capture_output=True, check=True)
        return done.stdout.decode().strip()

    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "one")
    run_shard(project, 1, "--co")
    assert json.loads(project.path.joinpath("shard-1.json").read_text())["commit"] == git("rev-parse", "HEAD")
    git("commit", "-q", "--allow-empty", "-m", "two")
    run_shard(project, 2, "--co")
    refused = merge(project, "shard-1.json", "shard-2.json")
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(
        [
            "ERROR: the reports come from different commits (* in shard-1.json; * in shard-2.json); "
            "merge only the shards of one CI run, which test one commit with the same prefect_flow_paths."
        ]
    )

    run_shard(project, 3, "--co", "--prefect-flow-paths=flows/etl.py")
    refused = merge(project, "shard-2.json", "shard-3.json")
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(
        [
            "ERROR: the reports come from different flow paths "
            "(flows in shard-2.json; flows/etl.py in shard-3.json); *"
        ]
    )

    project.path.joinpath("notes.json").write_text('{"shard": 1}')
    for name, error in [
        ("notes.json", "notes.json is not a prefect flow coverage report; each shard writes one *"),
        ("missing.json", "cannot read the report missing.json: No such file or directory; *"),
    ]:
        refused = merge(project, "shard-2.json", name)
        assert refused.ret == 4
        refused.stderr.fnmatch_lines([f"ERROR: {error}"])
    refused = merge(project, "shard-2.json", "--check-imports")
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(["ERROR: --check-imports: none of the reports holds an import check; *"])
