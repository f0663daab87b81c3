"""Bad input gets a clear error naming what was passed and what to do, not a Prefect traceback."""

from __future__ import annotations

import pytest

FLOW_MODULE = """
from prefect import flow, task

@task
def extract():
    return [1, 2]

@task
def load(rows):
    return len(rows)

@flow
def etl():
    return load(extract())
"""

PREFECT_INTERNALS = "site-packages/prefect/"


def run_inline(
    pytester: pytest.Pytester, test_source: str, *args: str, through_prefect_api: bool = False
) -> pytest.RunResult:
    """Run `test_source`; no Prefect frame in the output unless the test calls a Prefect API."""
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(test_source)
    result = pytester.runpytest_subprocess("-q", *args)
    if not through_prefect_api:
        assert PREFECT_INTERNALS not in result.stdout.str() + result.stderr.str()
    return result


def test_run_flow_given_a_plain_function(pytester: pytest.Pytester) -> None:
    result = run_inline(
        pytester,
        """
        def not_a_flow():
            return 1

        def test_it(run_flow):
            run_flow(not_a_flow)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*UsageError: run_flow() takes a @flow-decorated function, got function <function not_a_flow*"
            "Decorate it with `@flow`*"
        ]
    )


def test_unknown_task_name_lists_the_tasks_of_the_run(pytester: pytest.Pytester) -> None:
    result = run_inline(
        pytester,
        """
        from flows import etl

        def test_it(run_flow):
            run_flow(etl).task("transform")
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*UnknownTaskError: Flow run '*' (etl) has no task run of 'transform'.",
            "E*Tasks in this run: extract, load",
        ]
    )


def test_negative_times_for_an_injected_failure(pytester: pytest.Pytester) -> None:
    result = run_inline(
        pytester,
        """
        def test_it(fail_task):
            fail_task("extract", times=-1)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*UsageError:*times=-1*"])


def test_unknown_secret_name_lists_the_registered_ones(pytester: pytest.Pytester) -> None:
    result = run_inline(
        pytester,
        """
        from prefect.blocks.system import Secret

        def test_it(fake_blocks):
            fake_blocks.secret("database-password", "s3cr3t")
            Secret.load("database-pasword")
        """,
        through_prefect_api=True,  # the traceback passes Secret.load's own frames
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*UnknownBlockError:*database-pasword*", "*database-password*"])
    error_lines = [line for line in result.outlines if line.startswith("E ")]
    assert not [line for line in error_lines if "s3cr3t" in line]  # the test's source shows it, not the error
    assert "Unable to find block document" not in result.stdout.str()  # Prefect's own error


def test_unknown_backend_value(pytester: pytest.Pytester) -> None:
    result = run_inline(pytester, "def test_it():\n    pass\n", "--prefect-backend=bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*argument --prefect-backend: 'bogus' is not a backend; use `ephemeral`*or `server:<URL>`*"]
    )
    assert "Traceback" not in result.stderr.str()


def test_server_backend_that_does_not_answer(pytester: pytest.Pytester) -> None:
    result = run_inline(pytester, "def test_it():\n    pass\n", "--prefect-backend=server:http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*prefect_backend = server:http://127.0.0.1:9/api does not answer (*)*Start the server*"]
    )
    assert "Traceback" not in result.stderr.str()


PLUGIN_FRAMES = "pytest_prefect_flows/"


def test_a_usage_error_is_reported_from_the_users_line_not_the_plugins_frames(
    pytester: pytest.Pytester,
) -> None:
    source = """
        from flows import etl

        def test_not_a_flow(run_flow):
            run_flow(lambda: 1)

        def test_unknown_sweep_mode(fault_sweep):
            fault_sweep(etl, modes=("sideways",))

        def test_a_fault_that_never_fired(fail_task):
            fail_task("lod")
            etl()
        """
    result = run_inline(pytester, source)
    result.assert_outcomes(failed=2, passed=1, errors=1)
    output = result.stdout.str()
    assert PLUGIN_FRAMES not in output
    result.stdout.fnmatch_lines(
        [
            # raised at the fixture's teardown: no line of the user's to show, the message alone
            "*_ ERROR at teardown of test_a_fault_that_never_fired _*",
            "UnusedFaultError: 1 injected fault(s) never fired:",
            "  fail_task('lod')*",
            "*_ test_not_a_flow _*",
            "",
            "run_flow = <RunFlow *>",
            "",
            "    def test_not_a_flow(run_flow):",
            ">       run_flow(lambda: 1)",
            "E       pytest_prefect_flows.exceptions.UsageError: run_flow() takes a @flow-decorated*",
            "",
            "test_a_usage_error_is_reported_from_the_users_line_not_the_plugins_frames.py:4: UsageError",
            "*_ test_unknown_sweep_mode _*",
            "*",
            '>       fault_sweep(etl, modes=("sideways",))',
            "E       pytest_prefect_flows.exceptions.UsageError: fault_sweep(modes=('sideways',)) takes*",
        ]
    )


def test_fulltrace_still_shows_the_plugins_frames(pytester: pytest.Pytester) -> None:
    result = run_inline(
        pytester,
        """
        def test_not_a_flow(run_flow):
            run_flow(lambda: 1)
        """,
        "--fulltrace",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest_prefect_flows/runner.py:*", "E*UsageError: run_flow() takes*"])


def test_an_error_of_the_users_code_keeps_the_frames_it_passed_through(pytester: pytest.Pytester) -> None:
    """Only the errors the plugin raises on purpose lose its frames: an error from code it called
    (here a sweep's `setup`) keeps them, as it might be the plugin's bug."""
    result = run_inline(
        pytester,
        """
        from flows import etl

        def broken_setup():
            raise ValueError("the fixture data is missing")

        def test_sweep(fault_sweep):
            fault_sweep(etl, setup=broken_setup)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*pytest_prefect_flows/sweep/*", "E*ValueError: the fixture data is missing"]
    )
