"""Discovery of flows and tasks under `prefect_flow_paths`, and the import check built on it."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_prefect_flows.coverage.discovery import (
    Definition,
    Discovery,
    discover,
    discover_deployments,
    function_key,
    tasks_used_by,
)
from pytest_prefect_flows.coverage.gates import check_loaded
from pytest_prefect_flows.coverage.import_check import check_imports, import_modules
from pytest_prefect_flows.exceptions import UsageError

FLOWS = """
from prefect import flow, task

@task(retries=2)
def extract():
    return 1

@task
def load(value):
    return value

@flow
def pipeline():
    return load(extract())
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A rootdir with a uniquely named package; sys.path and sys.modules are restored afterwards."""
    package = f"flows_{uuid.uuid4().hex[:8]}"
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    yield tmp_path, package
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        del sys.modules[name]


def write(root: Path, relative: str, source: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def test_discovers_flows_and_tasks_of_a_package_with_their_lines(project: tuple[Path, str]) -> None:
    root, package = project
    write(root, f"{package}/etl.py", FLOWS)
    found = discover([package], rootdir=root)
    # Keyed by file and first line (the decorator), named as Prefect names them.
    assert [task.key for task in found.tasks] == [f"{package}/etl.py:4", f"{package}/etl.py:8"]
    assert [(flow.key, flow.name) for flow in found.flows] == [(f"{package}/etl.py:12", "pipeline")]
    extract = found.tasks[0]
    assert (extract.retries, extract.path, extract.module) == (2, f"{package}/etl.py", f"{package}.etl")
    assert (root / extract.path).read_text().splitlines()[extract.line - 1] == "def extract():"


def test_discovery_imports_nothing_and_leaves_sys_path_alone(project: tuple[Path, str]) -> None:
    root, package = project
    write(root, f"{package}/etl.py", FLOWS + "\nraise RuntimeError('imported')\n")
    path_before, modules_before = list(sys.path), set(sys.modules)
    found = discover([package], rootdir=root)
    assert (sys.path, set(sys.modules)) == (path_before, modules_before)
    assert len(found.tasks) == 2


def test_runs_match_however_the_module_was_imported(project: tuple[Path, str]) -> None:
    root, package = project
    write(root, f"{package}/etl.py", FLOWS)
    found = discover([package], rootdir=root)
    sys.path.insert(0, str(root))
    module = importlib.import_module(f"{package}.etl")
    spec = importlib.util.spec_from_file_location("loaded_by_path", root / package / "etl.py")
    assert spec is not None
    assert spec.loader is not None
    by_path = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(by_path)
    expected = found.tasks[0].key
    assert function_key(module.extract, root) == expected
    assert function_key(module.extract.with_options(name="other"), root) == expected
    assert function_key(by_path.extract, root) == expected


def test_same_file_name_in_folders_without_init_gets_unique_names(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        write(tmp_path, f"deployments/{folder}/flow.py", FLOWS.replace("pipeline", f"pipeline_{folder}"))
    found = discover(["deployments"], rootdir=tmp_path)
    assert [module.name for module in found.modules] == ["flow", "deployments.b.flow"]
    assert [flow.name for flow in found.flows] == ["pipeline-a", "pipeline-b"]
    assert len(found.tasks) == 4


def test_other_ways_to_declare_flows_and_tasks(tmp_path: Path) -> None:
    write(
        tmp_path,
        "jobs.py",
        """
        import prefect
        from prefect import task as prefect_task
        from mylib import flow  # not Prefect's: ignored

        def rows():
            return 1

        extract = prefect_task(rows)
        load = prefect_task(retries=3, name="load-rows")(rows)

        @prefect.flow(name="nightly")
        def nightly_job():
            return extract()

        @flow
        def not_a_prefect_flow():
            pass
        """,
    )
    found = discover(["jobs.py"], rootdir=tmp_path)
    assert [(task.name, task.retries, task.key) for task in found.tasks] == [("rows", 0, "jobs.py:6")]
    assert [(flow.name, flow.line) for flow in found.flows] == [("nightly", 13)]


def test_imported_definitions_count_where_they_are_defined(project: tuple[Path, str]) -> None:
    root, package = project
    write(root, f"{package}/etl.py", FLOWS)
    write(root, f"{package}/reexport.py", f"from {package}.etl import extract, pipeline\n")
    found = discover([package], rootdir=root)
    assert [task.module for task in found.tasks] == [f"{package}.etl", f"{package}.etl"]
    assert len(found.flows) == 1


def test_test_files_and_conftest_are_not_read(project: tuple[Path, str]) -> None:
    root, package = project
    write(root, f"{package}/etl.py", FLOWS)
    write(root, f"{package}/tests/test_etl.py", FLOWS)
    write(root, f"{package}/conftest.py", FLOWS)
    found = discover([package], rootdir=root)
    assert [module.name for module in found.modules] == [package, f"{package}.etl"]


def test_syntax_error_is_captured_with_the_module_path(project: tuple[Path, str]) -> None:
    root, package = project
    write(root, f"{package}/etl.py", FLOWS)
    write(root, f"{package}/broken.py", "def oops(:\n    pass\n")
    found = discover([package], rootdir=root)
    [broken] = found.import_errors
    assert broken.path == f"{package}/broken.py"
    assert str(broken.error).startswith("SyntaxError: ")
    assert len(found.tasks) == 2  # the rest of the package is still discovered


def test_plain_directory_and_dotted_module_name(project: tuple[Path, str]) -> None:
    root, package = project
    write(root, "scripts/job.py", FLOWS.replace("pipeline", "job_flow"))
    write(root, f"{package}/etl.py", FLOWS)
    found = discover(["scripts", f"{package}.etl"], rootdir=root)
    assert [flow.key for flow in found.flows] == ["scripts/job.py:12", f"{package}/etl.py:12"]
    assert [flow.name for flow in found.flows] == ["job-flow", "pipeline"]


def test_unknown_entry_names_itself_and_the_rootdir(project: tuple[Path, str]) -> None:
    root, _ = project
    with pytest.raises(UsageError, match=r"entry 'no_such_flows' is neither .* \(" + str(root)):
        discover(["no_such_flows"], rootdir=root)


def test_deployment_entrypoints_are_the_flows_to_cover(tmp_path: Path) -> None:
    write(tmp_path, "flows/etl.py", FLOWS)
    write(
        tmp_path,
        "prefect.yaml",
        """
        deployments:
          - name: nightly
            entrypoint: flows/etl.py:pipeline
          - name: typo
            entrypoint: flows/etl.py:pipelin
        """,
    )
    found = discover_deployments(tmp_path)
    assert (found.source, found.paths) == ("prefect.yaml", ["prefect.yaml"])
    assert [flow.key for flow in found.flows] == ["flows/etl.py:12"]
    assert found.tasks == []
    assert found.notes == ["prefect.yaml::typo: no @flow named 'pipelin' in flows/etl.py"]


def imported(root: Path, package: str) -> Discovery:
    return import_modules(discover([package], rootdir=root).modules, root)


def test_tasks_used_by_a_flow_by_name_and_through_a_module(project: tuple[Path, str]) -> None:
    root, package = project
    write(root, f"{package}/etl.py", FLOWS)
    write(
        root,
        f"{package}/report.py",
        f"""
        from prefect import flow
        from {package} import etl

        @flow
        def report():
            return etl.load(etl.extract())
        """,
    )
    found = imported(root, package)
    report = next(flow for flow in found.flows if flow.name == "report")
    assert sorted(task.name for task in tasks_used_by(report.obj)) == ["extract", "load"]


def test_import_check_passes_for_healthy_flows(project: tuple[Path, str]) -> None:
    root, package = project
    write(root, f"{package}/etl.py", FLOWS)
    assert check_loaded(imported(root, package)) == []


def test_import_check_reports_duplicate_task_names_in_a_flow(project: tuple[Path, str]) -> None:
    root, package = project
    write(
        root,
        f"{package}/dupes.py",
        """
        from prefect import flow, task

        @task(name="fetch")
        def fetch_users():
            return 1

        @task(name="fetch")
        def fetch_orders():
            return 2

        @flow
        def sync():
            return fetch_users() + fetch_orders()
        """,
    )
    [problem] = check_loaded(imported(root, package))
    assert problem.check == "task-names"
    assert problem.path == f"{package}/dupes.py:13"
    assert f"{package}.dupes:fetch_users, {package}.dupes:fetch_orders" in problem.message


def test_import_check_reports_a_flow_that_cannot_be_deployed() -> None:
    from prefect import flow

    # Built from a source string in no importable module: no file for a deployment's entrypoint.
    namespace = {"__name__": "built_at_runtime", "flow": flow}
    exec("@flow\ndef generated():\n    return 1\n", namespace)
    generated = namespace["generated"]
    definition = Definition(
        "flow", "built_at_runtime:generated", "generated", "built_at_runtime", "gen.py", 1, generated
    )
    [problem] = check_loaded(Discovery(paths=["gen.py"], flows=[definition]))
    assert (problem.check, problem.path, problem.object) == ("deployment", "gen.py:1", "flow 'generated'")
    assert "cannot be deployed" in problem.message


def test_public_import_check_imports_in_a_subprocess(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        write(tmp_path, f"deployments/{folder}/flow.py", FLOWS.replace("pipeline", f"pipeline_{folder}"))
    write(tmp_path, "deployments/c/flow.py", "import no_such_dependency_xyz\n")
    write(tmp_path, "deployments/d/logging.py", FLOWS)  # its dotted name is the stdlib's
    modules_before = set(sys.modules)
    problems = check_imports(discover(["deployments"], rootdir=tmp_path), tmp_path)
    assert [(problem.check, problem.path, problem.message) for problem in problems] == [
        ("import", "deployments/c/flow.py", "ModuleNotFoundError: No module named 'no_such_dependency_xyz'")
    ]
    assert not {"flow", "deployments.b.flow"} & (set(sys.modules) - modules_before)


def test_code_rebuilt_by_value_is_keyed_by_its_module_file() -> None:
    """cloudpickle (Dask) rebuilds a task's code with the file name `<dynamic-code>`."""
    namespace: dict[str, object] = {"__name__": __name__}
    exec(compile("\n\n\n\ndef square(x):\n    return x * x\n", "<dynamic-code>", "exec"), namespace)
    root = Path(__file__).parents[2]
    assert function_key(namespace["square"], root) == "tests/unit/test_coverage_discovery.py:5"
