"""Flow coverage as users meet it: the import check, the gates, the reports, xdist and coverage.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from pytest_prefect_flows.coverage.report import SCHEMA_PATH

FLOWS = """
from prefect import flow, task

ATTEMPTS = {}

@task(retries=2)
def extract(source: str) -> list[int]:
    ATTEMPTS[source] = ATTEMPTS.get(source, 0) + 1
    if ATTEMPTS[source] == 1:
        raise ConnectionError(f"{source} is down")
    return [1, 2, 3]

@task(retries=1)
def load(rows: list[int]) -> int:
    if not rows:
        return 0
    return len(rows)

@task
def archive(rows: list[int]) -> None:
    pass

@flow
def etl(source: str = "api") -> int:
    return load(extract(source))
"""

TESTS = """
from flows.etl import etl

def test_etl_once(run_flow):
    assert run_flow(etl, "first").result() == 3

def test_etl_twice(run_flow):
    assert run_flow(etl, "second").result() == 3
    assert run_flow(etl, "second").result() == 3
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nprefect_flow_paths = ["flows"]\n')
    pytester.mkpydir("flows")
    pytester.path.joinpath("flows", "etl.py").write_text(FLOWS)
    return pytester


def test_syntax_error_fails_the_import_check_naming_the_module(project: pytest.Pytester) -> None:
    project.path.joinpath("flows", "broken.py").write_text(
        "from prefect import flow\n\n@flow\ndef f(:\n    pass\n"
    )
    result = project.runpytest_subprocess("--prefect-check-imports")
    result.stdout.fnmatch_lines(
        [
            "*= prefect import check: 1 problems =*",
            "FAILED flows/broken.py: import: SyntaxError: invalid syntax (line 4)",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_import_check_alone_collects_no_test_even_with_testpaths(project: pytest.Pytester) -> None:
    project.makepyprojecttoml(
        '[tool.pytest.ini_options]\nprefect_flow_paths = ["flows"]\ntestpaths = ["tests"]\n'
    )
    project.mkdir("tests").joinpath("test_broken.py").write_text("def test_broken():\n    assert False\n")
    result = project.runpytest_inprocess("--prefect-check-imports")
    result.stdout.fnmatch_lines(
        [
            "*- prefect import check passed -*",
            "2 modules imported, 1 flows built their parameter schema and a deployment",
        ]
    )
    result.stdout.no_fnmatch_line("*test_broken*")
    assert result.ret == pytest.ExitCode.OK  # the failing test was not run
    assert project.runpytest_inprocess("-p", "xdist", "-n", "2", "--prefect-check-imports").ret == 0
    result = project.runpytest_inprocess("--prefect-check-imports", "tests")  # the check, then the tests
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- prefect import check passed -*"])
    with project.path.joinpath("pyproject.toml").open("a") as pyproject:
        pyproject.write('\naddopts = "--prefect-check-imports"\n')  # from addopts: on every session
    result = project.runpytest_inprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- prefect import check passed -*"])


def test_task_never_run_fails_cov_fail_under_naming_it(project: pytest.Pytester) -> None:
    project.makepyfile(test_etl=TESTS)
    result = project.runpytest_subprocess("--prefect-cov-fail-under=100", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*- prefect flow coverage -*",
            "flows: tasks run 2/3 (66.7%), flows run 1/1; 3 flow runs, 6 task runs in 2 tests",
            "flow  etl      flows/etl.py:24  runs 3  [[]Completed 3[]]  2 tests",
            "task  extract  flows/etl.py:7   runs 3  [[]Completed 3 Retried 2[]]  2 tests",
            "task  load     flows/etl.py:14  runs 3  [[]Completed 3[]]  2 tests",
            "task  archive  flows/etl.py:20  NOT RUN",
            "FAILED --prefect-cov-fail-under=100: 2 of 3 discovered tasks ran (66.7%, required 100%);"
            " never run: archive (flows/etl.py:20)",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_failed_gate_is_in_pytests_last_line_not_green(project: pytest.Pytester) -> None:
    project.makepyfile(test_etl=TESTS)
    result = project.runpytest_subprocess("--prefect-cov-fail-under=100", "--color=yes")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    last = result.outlines[-1]
    assert re.search(r"2 passed.*, .*1 gate failed.* in ", last), last
    # the line's own colour, which pytest gives a session with an outcome it does not know: yellow
    assert last.startswith("\x1b[33m="), last


@pytest.mark.parametrize(
    "args",
    [
        ["--fixtures"],
        ["--collect-only"],
        ["-k", "nomatch"],
        ["-p", "xdist", "-n", "2", "-k", "nomatch"],
        ["test_broken.py", "test_etl.py"],  # a collection error: the session stops before any test
    ],
)
def test_no_coverage_report_where_no_test_ran(project: pytest.Pytester, args: list[str]) -> None:
    project.makepyfile(test_etl=TESTS, test_broken="import no_such_module\n")
    result = project.runpytest_subprocess("--prefect-cov-fail-under=100", *args)
    result.stdout.no_fnmatch_line("*prefect flow coverage*")
    result.stdout.no_fnmatch_line("*tasks run*")


def test_retry_gate_accepts_retried_task_and_names_the_other(project: pytest.Pytester) -> None:
    project.makepyfile(test_etl=TESTS)
    result = project.runpytest_subprocess(
        "--prefect-require-retry-tested", "--prefect-report=json:report.json"
    )
    result.stdout.fnmatch_lines(
        [
            "FAILED --prefect-require-retry-tested: 1 of 2 tasks with retries were seen retrying;"
            " never retried: load (retries=1, ran 3x without retrying).*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [gate] = json.loads(project.path.joinpath("report.json").read_text())["gates"]
    assert gate["missing"] == ["flows/etl.py:13"]


def test_xdist_workers_report_the_same_totals_as_one_process(project: pytest.Pytester) -> None:
    project.makepyfile(test_etl=TESTS, test_more=TESTS.replace("first", "third").replace("second", "fourth"))
    schema = json.loads(SCHEMA_PATH.read_text())
    reports = []
    for name, args in (("single.json", ()), ("xdist.json", ("-p", "xdist", "-n", "2"))):
        result = project.runpytest_subprocess(*args, f"--prefect-report=json:{name}")
        result.assert_outcomes(passed=4)
        report = json.loads(project.path.joinpath(name).read_text())
        jsonschema.validate(report, schema)
        reports.append(report)
    single, distributed = reports
    assert distributed["summary"] == single["summary"]
    assert single["summary"]["flow_runs"] == 6
    assert [(item["key"], item["runs"], item["states"], item["tests"]) for item in distributed["tasks"]] == [
        (item["key"], item["runs"], item["states"], item["tests"]) for item in single["tasks"]
    ]


def test_without_flow_paths_the_flows_that_ran_are_summarised(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from prefect import flow, task

        @task
        def shout(text):
            return text.upper()

        @flow
        def greet(name="world"):
            return shout(name)

        def test_greet(run_flow):
            assert run_flow(greet).result() == "WORLD"
        """
    )
    result = pytester.runpytest_subprocess("--prefect-require-retry-tested", "--prefect-report=term-full")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "1 flow runs, 1 task runs in 1 tests (set prefect_flow_paths to see what never ran)",
            "flow  greet  test_without_flow_paths_the_flows_that_ran_are_summarised.py:*  runs 1  *",
            "task  shout  *  runs 1  [[]Completed 1[]]  1 test",
            "PASSED --prefect-require-retry-tested: 0 of 0 tasks with retries were seen retrying",
        ]
    )
    assert result.ret == pytest.ExitCode.OK


def test_line_coverage_of_each_task_under_pytest_cov(project: pytest.Pytester) -> None:
    project.makepyfile(test_etl=TESTS)
    result = project.runpytest_subprocess(
        "-p", "pytest_cov", "--cov=flows", "--cov-report=", "--prefect-report=term-full"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "task  extract  flows/etl.py:7   runs 3  * lines 100%",
            "task  load     flows/etl.py:14  runs 3  * lines 66.7%",
            "task  archive  flows/etl.py:20  NOT RUN",
        ]
    )


def test_cov_fail_under_without_flow_paths_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--prefect-cov-fail-under=80")
    result.stderr.fnmatch_lines(["ERROR: --prefect-cov-fail-under need prefect_flow_paths to know *"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_reports_show_xfail_and_the_html_timeline(project: pytest.Pytester, tmp_path: Path) -> None:
    project.makepyfile(
        test_etl=TESTS
        + """
import pytest

@pytest.mark.xfail(reason="known bug")
def test_expected_to_fail(run_flow):
    run_flow(etl, "fifth")
    raise AssertionError("still broken")

@pytest.mark.xfail(reason="fixed already")
def test_unexpectedly_passes(run_flow):
    run_flow(etl, "sixth")
"""
    )
    result = project.runpytest_subprocess(
        f"--prefect-report=html:{tmp_path}/out/report.html", "--prefect-report=json:report.json"
    )
    result.assert_outcomes(passed=2, xfailed=1, xpassed=1)
    result.stdout.fnmatch_lines([f"html report written to {tmp_path}/out/report.html"])
    report = json.loads(project.path.joinpath("report.json").read_text())
    jsonschema.validate(report, json.loads(SCHEMA_PATH.read_text()))
    outcomes = {test["nodeid"].rpartition("::")[2]: test["outcome"] for test in report["tests"]}
    assert outcomes == {
        "test_etl_once": "passed",
        "test_etl_twice": "passed",
        "test_expected_to_fail": "xfailed",
        "test_unexpectedly_passes": "xpassed",
    }
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<svg") == 4  # one timeline per test that ran flows
    assert '<b class="">xfailed</b>' in page
    assert '<b class="">xpassed</b>' in page
