"""Gates set in the ini file apply to whole-suite runs; a command-line selection skips them in one line.

The tests here run no flow: discovery reads sources, so a gate fails (no task ran) without a backend.
"""

from __future__ import annotations

import pytest

FLOWS = """
from prefect import flow, task

@task(retries=1)
def extract() -> int:
    return 1

@flow
def etl() -> int:
    return extract()
"""

TESTS = """
import pytest

def test_one():
    pass

@pytest.mark.smoke
def test_two():
    pass
"""

GATES = "--prefect-cov-fail-under=100, --prefect-require-retry-tested"
LEFT_OUT = "more_tests/test_more_tests.py"
FAILED_GATE = "FAILED --prefect-cov-fail-under=100: 0 of 1 discovered tasks ran *"


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyprojecttoml(
        "[tool.pytest.ini_options]\n"
        'testpaths = ["tests", "more_tests"]\n'
        'prefect_flow_paths = ["flows"]\n'
        'prefect_cov_fail_under = "100"\n'
        "prefect_require_retry_tested = true\n"
        'markers = ["smoke: a marker to select by"]\n'
    )
    pytester.mkpydir("flows").joinpath("etl.py").write_text(FLOWS)
    for folder in ("tests", "more_tests"):
        pytester.mkdir(folder).joinpath(f"test_{folder}.py").write_text(TESTS)
    return pytester


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-k", "one"], "-k selects part of the suite"),
        (["-m", "smoke"], "-m selects part of the suite"),
        (
            ["tests/test_tests.py::test_one"],
            "node ids select part of the suite (tests/test_tests.py::test_one)",
        ),
        (["tests"], f"the paths given leave out test files such as {LEFT_OUT}"),
        (["--deselect", "tests/test_tests.py::test_two"], "--deselect selects part of the suite"),
    ],
)
def test_a_selection_skips_the_gates_in_one_line(
    suite: pytest.Pytester, args: list[str], reason: str
) -> None:
    result = suite.runpytest_inprocess(*args)
    result.stdout.fnmatch_lines(
        [f"prefect gates skipped ({GATES}): {reason}; --prefect-gates=always applies them anyway"]
    )
    result.stdout.no_fnmatch_line("*FAILED --prefect-*")
    assert result.ret == pytest.ExitCode.OK


def test_the_whole_suite_applies_the_gates_and_always_forces_them(suite: pytest.Pytester) -> None:
    for args in ([], ["tests", "more_tests"], ["-k", "one", "--prefect-gates=always"]):
        result = suite.runpytest_inprocess(*args)
        result.stdout.fnmatch_lines([FAILED_GATE])
        result.stdout.no_fnmatch_line("*prefect gates skipped*")
        assert result.ret == pytest.ExitCode.TESTS_FAILED, args


def test_prefect_gates_in_the_ini_file_and_a_wrong_value(suite: pytest.Pytester) -> None:
    suite.path.joinpath("pyproject.toml").write_text(
        suite.path.joinpath("pyproject.toml").read_text() + '\nprefect_gates = "always"\n'
    )
    result = suite.runpytest_inprocess("-k", "one")
    result.stdout.fnmatch_lines([FAILED_GATE])
    assert result.ret == pytest.ExitCode.TESTS_FAILED

    result = suite.runpytest_inprocess("--prefect-gates=sometimes")
    result.stderr.fnmatch_lines(
        ["*argument --prefect-gates: invalid choice: 'sometimes' (choose from *whole-suite*always*)"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_last_failed_rerun_and_a_stopped_session_skip_the_gates(suite: pytest.Pytester) -> None:
    suite.path.joinpath("tests", "test_tests.py").write_text(
        TESTS + "\ndef test_broken():\n    assert False\n"
    )
    full = suite.runpytest_inprocess("-p", "cacheprovider")
    full.stdout.fnmatch_lines([FAILED_GATE])
    result = suite.runpytest_inprocess("-p", "cacheprovider", "--lf")
    result.stdout.fnmatch_lines(
        ["prefect gates skipped (*): --lf reruns only the tests that failed last time; *"]
    )
    result = suite.runpytest_inprocess("-x")
    result.stdout.fnmatch_lines(
        ["prefect gates skipped (*): the session stopped early (stopping after 1 failures); *"]
    )


def test_a_marker_expression_in_addopts_is_part_of_the_suite(suite: pytest.Pytester) -> None:
    with suite.path.joinpath("pyproject.toml").open("a") as pyproject:
        pyproject.write("\naddopts = \"-m 'not smoke'\"\n")
    result = suite.runpytest_inprocess()
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines([FAILED_GATE])


def test_running_from_a_subdirectory_skips_the_gates(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(suite.path / "tests")
    result = suite.runpytest_inprocess()
    result.stdout.fnmatch_lines(
        [f"prefect gates skipped (*): running from tests leaves out test files such as {LEFT_OUT};*"]
    )
    assert result.ret == pytest.ExitCode.OK
