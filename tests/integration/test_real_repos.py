"""Flow coverage on layouts found in real flow repositories (issue: discovery that drops nothing,
quiet output, no side effects), and Prefect's own `prefect_test_harness()` under the plugin."""

from __future__ import annotations

import re
import textwrap

import pytest

TASKS = """
from prefect import flow, task

@task
def {name}_extract():
    return [1, 2]

@task(retries=1)
def {name}_load(rows):
    return len(rows)

@flow
def {name}_flow():
    return {name}_load({name}_extract())
"""


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for relative, source in files.items():
        path = pytester.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def coverage_section(lines: list[str]) -> list[str]:
    """The lines of the `prefect flow coverage` section of a terminal report."""
    start = next(i for i, line in enumerate(lines) if "prefect flow coverage" in line)
    ends = (i for i in range(start + 1, len(lines)) if re.match(r"(=|-)+ |\d+ (passed|failed)", lines[i]))
    end = next(ends, len(lines))
    return lines[start + 1 : end]


def test_flows_folder_without_init_imported_as_package_and_by_path(pytester: pytest.Pytester) -> None:
    """Tests import `flows.report`; the conftest loads `flows/etl.py` by path, as some repos do.

    Every task ran, so coverage is 100%; the block class of the file loaded by path registers once
    (no warning); nothing of the plugin's discovery shows in the session.
    """
    write(
        pytester,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\nprefect_flow_paths = ["flows"]\n',
            "flows/etl.py": TASKS.format(name="etl")
            + "\nfrom prefect.blocks.core import Block\n\nclass WarehouseConfig(Block):\n    dsn: str = ''\n",
            "flows/report.py": TASKS.format(name="report"),
            "conftest.py": """
                import importlib.util
                import pytest

                @pytest.fixture(scope="session")
                def etl():
                    spec = importlib.util.spec_from_file_location("etl_by_path", "flows/etl.py")
                    module = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(module)
                    return module
                """,
            "tests/test_flows.py": """
                from flows.report import report_flow

                def test_etl(run_flow, etl):
                    assert run_flow(etl.etl_flow).result() == 2

                def test_report(run_flow):
                    assert run_flow(report_flow).result() == 2
                """,
        },
    )
    result = pytester.runpytest_subprocess("-W", "error::UserWarning")
    result.assert_outcomes(passed=2, warnings=0)
    result.stdout.fnmatch_lines(
        ["flows: tasks run 4/4 (100.0%), flows run 2/2; 2 flow runs, 4 task runs in 2 tests"]
    )
    result.stdout.no_fnmatch_line("*NOT RUN*")


def test_one_flow_py_per_deployment_folder_all_discovered_and_gated(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\nprefect_flow_paths = ["deployments"]\n',
            "deployments/sales/flow.py": TASKS.format(name="sales"),
            "deployments/stock/flow.py": TASKS.format(name="stock"),
            "tests/test_sales.py": """
                import importlib.util

                spec = importlib.util.spec_from_file_location("sales_flow", "deployments/sales/flow.py")
                sales = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(sales)

                def test_sales(run_flow):
                    assert run_flow(sales.sales_flow).result() == 2
                """,
        },
    )
    result = pytester.runpytest_subprocess("--prefect-cov-fail-under=100", "--prefect-check-imports", "tests")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "deployments: tasks run 2/4 (50.0%), flows run 1/2; *",
            "never run: 1 flows, 2 tasks",
            "  flow  stock-flow     deployments/stock/flow.py:13  NOT RUN",
            "FAILED --prefect-cov-fail-under=100: 2 of 4 discovered tasks ran (50.0%, required 100%); "
            "never run: stock_extract (deployments/stock/flow.py:5), stock_load (*/flow.py:9)",
            "2 modules imported, 2 flows built their parameter schema and a deployment",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_default_report_of_a_large_repository_fits_a_screen(pytester: pytest.Pytester) -> None:
    modules = {f"flows/pipeline_{n:03}.py": _generated_module(n) for n in range(50)}
    write(
        pytester, {**modules, "pyproject.toml": '[tool.pytest.ini_options]\nprefect_flow_paths = ["flows"]\n'}
    )
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    default = pytester.runpytest_inprocess("-q")
    section = coverage_section(default.outlines)
    assert section[0] == "flows: tasks run 0/500 (0.0%), flows run 0/150; 0 flow runs, 0 task runs in 0 tests"
    assert len(section) <= 25, "\n".join(section)
    assert "  ... and 642 more (--prefect-report=term-full or -v lists them all)" in section
    full = pytester.runpytest_inprocess("-q", "--prefect-report=term-full")
    assert len(coverage_section(full.outlines)) == 1 + 150 + 500


def _generated_module(n: int) -> str:
    """Three flows and ten tasks: 150 flows and 500 tasks in 50 modules."""
    tasks = range(10)
    lines = ["from prefect import flow, task", ""]
    for t in tasks:
        lines += ["@task", f"def step_{n}_{t}():", f"    return {t}", ""]
    for f in range(3):
        lines += ["@flow", f"def pipeline_{n}_{f}():", f"    return step_{n}_0()", ""]
    return "\n".join(lines)


def test_prefect_yaml_deployments_never_tested_show_without_options(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {
            "flows/etl.py": TASKS.format(name="etl"),
            "flows/report.py": TASKS.format(name="report"),
            "prefect.yaml": """
                deployments:
                  - name: nightly-etl
                    entrypoint: flows/etl.py:etl_flow
                  - name: weekly-report
                    entrypoint: flows/report.py:report_flow
                """,
            "tests/test_etl.py": """
                from flows.etl import etl_flow

                def test_etl(run_flow):
                    assert run_flow(etl_flow).result() == 2
                """,
        },
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "deployed flows (prefect.yaml): run 1/2; 1 flow runs, 2 task runs in 1 tests",
            "never run: 1 flows",
            "  flow  report-flow  flows/report.py:13  NOT RUN",
        ]
    )
    assert result.ret == pytest.ExitCode.OK


DIRECT_TESTS = """
from flows.etl import etl_extract, etl_load

def test_extract_directly():
    assert etl_extract.fn() == [1, 2]

def test_load_directly():
    assert etl_load.fn([1]) == 1
"""


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("-p", "pytest_cov", "--cov=flows", "--cov-report="), id="coverage.py"),
        pytest.param((), id="watch"),  # sys.monitoring on 3.12+, the `.fn` descriptor before
    ],
)
def test_task_tested_only_through_fn_counts_as_direct(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    write(
        pytester,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\nprefect_flow_paths = ["flows"]\n',
            "flows/__init__.py": "",
            "flows/etl.py": TASKS.format(name="etl"),
            "tests/test_direct.py": DIRECT_TESTS,
        },
    )
    result = pytester.runpytest_subprocess(
        "--prefect-cov-fail-under=100", "--prefect-report=term-full", *args
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "flows: tasks run 2/2 (100.0%) incl. 2 only through .fn(), flows run 0/1; *",
            "flow  etl-flow     flows/etl.py:13  NOT RUN",
            "task  etl_extract  flows/etl.py:5   DIRECT *",
            "PASSED --prefect-cov-fail-under=100: *",
        ]
    )
    not_counted = pytester.runpytest_subprocess(
        "--prefect-cov-fail-under=100", "--prefect-no-cov-count-direct", *args
    )
    not_counted.stdout.fnmatch_lines(["FAILED --prefect-cov-fail-under=100: 0 of 2 discovered tasks ran *"])


def test_session_fixture_with_prefect_test_harness_reuses_the_backend(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from prefect.testing.utilities import prefect_test_harness

        @pytest.fixture(autouse=True, scope="session")
        def prefect_test_fixture():
            with prefect_test_harness(server_startup_timeout=60):
                yield
        """
    )
    pytester.makepyfile(
        """
        from prefect import flow
        from prefect.settings import PREFECT_API_URL

        @flow
        def hello():
            return "hi"

        def test_flow_runs_on_the_plugin_backend(prefect_harness):
            assert hello() == "hi"
            # Prefect's harness would point the API at the server it started.
            assert PREFECT_API_URL.value() == prefect_harness.api_url

        def test_second():
            assert hello() == "hi"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["prefect-flows: 2 tests ran inside prefect_test_harness(), served by the plugin's isolated *"]
    )
