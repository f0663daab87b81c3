"""Flow coverage that is true in every layout: Prefect imported late, `.fn()` calls on every Python,
files that cannot be read, flows defined outside the flow paths, and the gates at their edges."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import jsonschema
import pytest

from pytest_prefect_flows.coverage.report import SCHEMA_PATH

SALES_FLOW = """
from prefect import flow, task

@task
def extract():
    return [1, 2]

@task
def clean(rows):
    return [row for row in rows if row]

@flow
def sales_flow():
    return len(extract())

@flow
def sales_report(rows):
    return sum(rows)
"""

# One folder per deployment, no __init__.py: tests load the flow file by path, inside the test.
SALES_TESTS = """
import importlib.util
import sys
from pathlib import Path

def load(name):
    path = Path(__file__).parents[1] / "deployments" / name / "flow.py"
    spec = importlib.util.spec_from_file_location(f"{name}_flow", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def test_plain():
    assert "prefect" not in sys.modules  # nothing imported Prefect before the tests below

def test_sales_flow():
    assert load("sales").sales_flow() == 2

def test_clean_directly():
    assert load("sales").clean.fn([0, 1]) == [1]

def test_report_directly():
    assert load("sales").sales_report.fn([1, 2]) == 3
"""


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for relative, source in files.items():
        path = pytester.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


@pytest.mark.fresh_interpreter
def test_deployment_folders_loaded_inside_tests_reach_100_percent_alone_and_under_k(
    pytester: pytest.Pytester,
) -> None:
    """No test module imports Prefect at its top: runs are recorded all the same, the same alone as
    in the whole suite, and `.fn()` calls count for the task and the flow that only ran that way."""
    write(
        pytester,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\nprefect_flow_paths = ["deployments"]\n',
            "deployments/sales/flow.py": SALES_FLOW,
            "tests/test_sales.py": SALES_TESTS,
        },
    )
    whole = pytester.runpytest_subprocess(
        "--prefect-cov-fail-under=100", "--prefect-report=json:whole.json", "tests"
    )
    whole.assert_outcomes(passed=4)
    assert whole.ret == pytest.ExitCode.OK
    report = json.loads(pytester.path.joinpath("whole.json").read_text())
    assert (
        report["summary"] | {"task_coverage_percent": 100.0, "flows_run": 2, "flows_direct": 1}
        == report["summary"]
    )
    assert [gate["passed"] for gate in report["gates"]] == [True]

    alone = pytester.runpytest_subprocess(
        "-k", "sales_flow", "--prefect-report=json:alone.json", "--prefect-report=term", "tests"
    )
    alone.assert_outcomes(passed=1, deselected=3)
    alone.stdout.fnmatch_lines(["deployments: * 1 flow runs, 1 task runs in 1 tests"])
    [test] = json.loads(pytester.path.joinpath("alone.json").read_text())["tests"]
    assert _shape(test) == _shape(report["tests"][0]) == ("tests/test_sales.py::test_sales_flow", ["extract"])


def _shape(test: dict[str, Any]) -> tuple[str, list[str]]:
    [flow_run] = test["flow_runs"]
    return test["nodeid"], [run["label"] for run in flow_run["task_runs"]]


@pytest.mark.fresh_interpreter
def test_runs_recorded_when_a_fixture_imports_prefect(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {
            "flows.py": SALES_FLOW,
            "conftest.py": """
                import pytest

                @pytest.fixture
                def sales():
                    import flows
                    return flows
                """,
            "test_late.py": """
                import sys

                def test_flow_from_a_fixture(sales):
                    assert sales.sales_flow() == 2

                def test_runs_of_a_flow_imported_in_the_test(prefect_runs):
                    from flows import sales_flow
                    sales_flow()
                    assert prefect_runs.last.task("extract").state_name == "Completed"
                """,
        },
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["2 flow runs, 2 task runs in 2 tests *"])


TASKS_AND_FLOW = """
from prefect import flow, task

@task
def etl_extract():
    return [1, 2]

@task(retries=1)
def etl_load(rows):
    return len(rows)

@flow
def etl_flow():
    return etl_load(etl_extract())
"""


def test_fn_of_a_flow_and_of_a_task_counts_as_direct_without_coverage_py(pytester: pytest.Pytester) -> None:
    """And a task called from a test, outside any flow run, is a task run like any other."""
    write(
        pytester,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\nprefect_flow_paths = ["flows"]\n',
            "flows/__init__.py": "",
            "flows/sales.py": SALES_FLOW,
            "tests/test_direct.py": """
                from flows.sales import clean, extract, sales_report

                def test_clean_directly():
                    assert clean.fn([0, 1]) == [1]

                def test_report_directly():
                    assert sales_report.fn([1, 2]) == 3

                def test_extract_outside_a_flow():
                    assert extract() == [1, 2]
                """,
        },
    )
    result = pytester.runpytest_subprocess("--prefect-report=term-full")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "flows: tasks run 2/2 (100.0%) incl. 1 only through .fn(), "
            "flows run 1/2 incl. 1 only through .fn(); 0 flow runs, 1 task runs in 1 tests",
            "flow  sales-flow    flows/sales.py:13  NOT RUN",
            "flow  sales-report  flows/sales.py:17  DIRECT *",
            "task  extract       flows/sales.py:5   runs 1  [[]Completed 1[]]  1 test",
            "task  clean         flows/sales.py:9   DIRECT *",
        ]
    )


def test_a_flow_file_that_cannot_be_read_fails_every_gate_and_shows_in_every_report(
    pytester: pytest.Pytester,
) -> None:
    write(
        pytester,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\nprefect_flow_paths = ["flows"]\n',
            "flows/__init__.py": "",
            "flows/etl.py": "from prefect import flow\n\n@flow\ndef etl():\n    return 1\n",
            "flows/broken.py": "from prefect import flow, task\n\n@task\ndef f(:\n    pass\n",
            "tests/test_etl.py": """
                from flows.etl import etl

                def test_etl(run_flow):
                    assert run_flow(etl).result() == 1
                """,
        },
    )
    pytester.path.joinpath("flows", "notes.py").mkdir()  # a directory named like a module
    result = pytester.runpytest_subprocess(
        "--prefect-cov-fail-under=100",
        "--prefect-require-retry-tested",
        "--prefect-report=term",
        "--prefect-report=json:report.json",
        "--prefect-report=html:report.html",
    )
    result.assert_outcomes(passed=1)
    broken = "flows/broken.py (SyntaxError: invalid syntax (line 4))"
    files = f"{broken}; flows/notes.py (IsADirectoryError: Is a directory)"
    result.stdout.fnmatch_lines(
        [
            "UNREADABLE flows/broken.py: SyntaxError: invalid syntax (line 4) *",
            "UNREADABLE flows/notes.py: IsADirectoryError: Is a directory *",
            f"FAILED --prefect-cov-fail-under=100: 0 of 0 discovered tasks ran *; cannot read {files}*",
            f"FAILED --prefect-require-retry-tested: *; cannot read {files}*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads(pytester.path.joinpath("report.json").read_text())
    jsonschema.validate(report, json.loads(SCHEMA_PATH.read_text()))
    assert report["unreadable"] == [
        {"path": "flows/broken.py", "error": "SyntaxError: invalid syntax (line 4)"},
        {"path": "flows/notes.py", "error": "IsADirectoryError: Is a directory"},
    ]
    assert (
        "flows/broken.py: SyntaxError: invalid syntax (line 4)"
        in pytester.path.joinpath("report.html").read_text()
    )


TEST_LOCAL_FLOWS = """
import importlib.util
import tempfile
from pathlib import Path

from prefect import flow

@flow
def fails_on_purpose():
    raise ValueError("expected")

def test_failing_flow_defined_here(run_flow):
    assert run_flow(fails_on_purpose).state_name == "Failed"

def test_failing_flow_written_to_a_temporary_directory(run_flow):
    path = Path(tempfile.mkdtemp()) / "generated.py"
    path.write_text("from prefect import flow\\n\\n@flow\\ndef generated():\\n    raise ValueError('no')\\n")
    spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert run_flow(module.generated).state_name == "Failed"
"""


@pytest.mark.parametrize("flow_paths", [True, False], ids=["flow paths", "no flow paths"])
def test_flows_defined_in_tests_or_temporary_dirs_are_counted_not_listed(
    pytester: pytest.Pytester, flow_paths: bool
) -> None:
    files = {
        "flows/__init__.py": "",
        "flows/only_flows.py": "from prefect import flow\n\n@flow\ndef f():\n    pass\n",
    }
    if flow_paths:
        files["pyproject.toml"] = '[tool.pytest.ini_options]\nprefect_flow_paths = ["flows"]\n'
    write(pytester, {**files, "tests/test_local.py": TEST_LOCAL_FLOWS})
    result = pytester.runpytest_subprocess("--prefect-report=json:report.json", "--prefect-report=term")
    result.assert_outcomes(passed=2)
    totals = "2 flow runs, 0 task runs in 2 tests"
    result.stdout.fnmatch_lines([f"flows: flows run 0/1; {totals}" if flow_paths else f"{totals} *"])
    result.stdout.no_fnmatch_line("*only failed*")
    result.stdout.no_fnmatch_line("*0/0*")
    text = pytester.path.joinpath("report.json").read_text()
    assert not re.search(r"/tmp(?!/pytest-of-)", text.replace(str(pytester.path), "<rootdir>")), text
    keys = {item["key"] for item in json.loads(text)["flows"]}
    assert "<tmp>/generated.py:3" in keys


def test_assert_task_retried_without_times_fails_on_a_task_that_never_retried(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from prefect import flow, task
        from pytest_prefect_flows import assert_task_retried

        @task(retries=2)
        def steady():
            return 1

        @flow
        def once():
            return steady()

        def test_never_retried(run_flow):
            assert_task_retried(run_flow(once), "steady")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*was retried 0 time(s).*", "*expected*at least 1 retry*"])


def test_cov_fail_under_at_its_boundary(pytester: pytest.Pytester) -> None:
    """2 of 3 tasks ran: 66.7%. A threshold just above fails, one just below passes."""
    write(
        pytester,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\nprefect_flow_paths = ["flows"]\n',
            "flows/__init__.py": "",
            "flows/etl.py": TASKS_AND_FLOW + "\n@task\ndef archive(rows):\n    pass\n",
            "tests/test_etl.py": """
                from flows.etl import etl_flow

                def test_etl(run_flow):
                    assert run_flow(etl_flow).result() == 2
                """,
        },
    )
    above = pytester.runpytest_subprocess("--prefect-cov-fail-under=67")
    above.stdout.fnmatch_lines(["FAILED --prefect-cov-fail-under=67: 2 of 3 discovered tasks ran (66.7%, *"])
    assert above.ret == pytest.ExitCode.TESTS_FAILED
    below = pytester.runpytest_subprocess("--prefect-cov-fail-under=66.6")
    below.stdout.fnmatch_lines(["PASSED --prefect-cov-fail-under=66.6: 2 of 3 discovered tasks ran *"])
    assert below.ret == pytest.ExitCode.OK
