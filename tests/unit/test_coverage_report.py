"""Collection of real run records, the gates, and the term / json / html renderings of the report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prefect import flow, task

from pytest_prefect_flows.coverage import gates
from pytest_prefect_flows.coverage.collector import Collector
from pytest_prefect_flows.coverage.discovery import Definition, Discovery, function_key
from pytest_prefect_flows.coverage.html_report import render_html
from pytest_prefect_flows.coverage.report import SCHEMA_PATH, build_report, render_term
from pytest_prefect_flows.recording import RunLog
from pytest_prefect_flows.runner import RunFlow

CALLS: dict[str, int] = {}


@task(retries=2)
def flaky(name: str) -> str:
    CALLS[name] = CALLS.get(name, 0) + 1
    if CALLS[name] == 1:
        raise ConnectionError("first attempt fails")
    return name


@task(retries=1)
def steady(value: str) -> str:
    return value.upper()


@task
def never_called() -> None:
    """Discovered but not run by any test here."""


@flow
def child(value: str) -> str:
    return steady(value)


@flow
def parent(name: str) -> str:
    return child(flaky(name))


def key(obj: Any) -> str:
    value = function_key(obj)
    assert value is not None
    return value


def definition(obj: Any, kind: str = "task") -> Definition:
    return Definition(
        kind, key(obj), obj.name, __name__, "tests/unit/test_coverage_report.py", 1, obj, obj.retries or 0
    )


@pytest.fixture
def collected(run_flow: RunFlow, prefect_runs: RunLog, request: pytest.FixtureRequest) -> Collector:
    run_flow(parent, request.node.name)
    collector = Collector()
    collector.add_test("tests/test_a.py::test_one", "passed", prefect_runs)
    return collector


def test_usage_counts_runs_states_and_tests_per_function(collected: Collector) -> None:
    usage = collected.usage()
    assert usage[key(flaky)].states == {"Completed": 1, "Retried": 1}
    assert usage[key(flaky)].retried
    assert usage[key(steady)].states == {"Completed": 1}
    assert usage[key(child)].kind == "flow"
    assert {item.runs for item in usage.values()} == {1}
    assert usage[key(parent)].tests == ["tests/test_a.py::test_one"]


def test_attempt_segments_show_the_retried_attempt(collected: Collector) -> None:
    [flow_run] = collected.tests[0]["flow_runs"]
    [flaky_run] = [run for run in flow_run["task_runs"] if run["label"] == "flaky"]
    assert [segment["state"] for segment in flaky_run["attempts"]] == ["Retried", "Completed"]
    first, second = flaky_run["attempts"]
    assert 0 <= first["start"] <= first["end"] <= second["start"] <= second["end"]
    assert [sub["label"] for sub in flow_run["subflows"]] == ["child"]


def test_merging_worker_data_gives_the_same_totals(collected: Collector) -> None:
    controller = Collector()
    controller.merge(json.loads(json.dumps(collected.to_data())))
    controller.merge(json.loads(json.dumps(collected.to_data())))
    usage = controller.usage()
    assert usage[key(flaky)].runs == 2
    assert usage[key(flaky)].states == {"Completed": 2, "Retried": 2}


def test_cov_fail_under_names_the_task_that_never_ran(collected: Collector) -> None:
    discovered = [definition(flaky), definition(steady), definition(never_called)]
    result = gates.cov_fail_under(discovered, collected.usage(), threshold=100)
    assert not result.passed
    assert result.missing == [key(never_called)]
    assert "2 of 3 discovered tasks ran (66.7%, required 100%)" in result.message
    assert "never run: never_called (tests/unit/test_coverage_report.py:1)" in result.message
    assert gates.cov_fail_under(discovered, collected.usage(), threshold=66).passed


def test_require_retry_tested_names_tasks_with_retries_never_retried(collected: Collector) -> None:
    result = gates.require_retry_tested([definition(flaky), definition(steady)], collected.usage())
    assert not result.passed
    assert result.missing == [key(steady)]
    assert "steady (retries=1, ran 1x without retrying)" in result.message
    assert gates.require_retry_tested([definition(flaky), definition(never_called)], collected.usage()).passed


def test_json_report_matches_the_published_schema(collected: Collector) -> None:
    report = build_report(collected, None, [], None, Path.cwd())
    jsonschema.validate(json.loads(json.dumps(report)), json.loads(SCHEMA_PATH.read_text()))
    assert report["summary"]["task_runs"] == 2
    assert report["summary"]["flow_runs"] == 2


def test_full_term_report_is_one_line_per_flow_and_task(collected: Collector) -> None:
    lines: list[str] = []
    render_term(build_report(collected, None, [], None, Path.cwd()), lines.append, full=True)
    assert lines[0] == "2 flow runs, 2 task runs in 1 tests (set prefect_flow_paths to see what never ran)"
    assert len(lines) == 1 + 4
    [flaky_line] = [line for line in lines if re.match(r"task\s+flaky\s", line)]
    assert "runs 1  [Completed 1 Retried 1]  1 test" in flaky_line


def test_default_term_report_lists_only_what_never_ran(collected: Collector) -> None:
    discovery = Discovery(paths=["flows"], tasks=[definition(flaky), definition(never_called)])
    lines: list[str] = []
    render_term(build_report(collected, discovery, [], None, Path.cwd()), lines.append)
    assert lines[0].startswith("flows: tasks run 1/2 (50.0%); 2 flow runs")  # no "flows run 0/0"
    assert lines[1:] == [
        "never run: 1 tasks",
        "  task  never_called  tests/unit/test_coverage_report.py:1  NOT RUN",
    ]


def test_html_report_is_self_contained_with_a_bar_per_attempt(collected: Collector) -> None:
    page = render_html(build_report(collected, None, [], None, Path.cwd()))
    assert not re.search(r"""(src|href)=|url\(|@import|<script""", page)
    assert page.count("<svg") == 1
    assert "flaky-" in page
    # parent, child and steady ran once, flaky twice (a retried attempt, then the completed one)
    assert page.count("<rect") == 5
    assert 'fill="#f0a030"' in page  # the attempt that failed and was retried


def test_default_term_report_lists_what_only_ever_failed(collected: Collector) -> None:
    report = build_report(collected, None, [], None, Path.cwd())
    [steady_item] = [item for item in report["tasks"] if item["name"] == "steady"]
    steady_item["states"] = {"Failed": 1, "Retried": 1}
    lines: list[str] = []
    render_term(report, lines.append)
    assert len(lines) == 1, lines  # defined in this test file: counted, not listed
    steady_item["path"] = "flows/steady.py"
    lines.clear()
    render_term(report, lines.append)
    assert lines[1] == "only failed: 1 tasks"
    assert re.fullmatch(
        r"  task  steady  flows/steady.py:\d+  runs 1  \[Failed 1 Retried 1\]  1 test", lines[2]
    )


def test_a_tests_fault_sweep_is_in_the_json_and_html_reports(run_flow: RunFlow, prefect_runs: RunLog) -> None:
    from pytest_prefect_flows.sweep import Fault, FaultPoint, SweepPoint, SweepReport

    run_flow(parent, "sweep")
    failing = SweepPoint(
        (Fault(FaultPoint("steady", 0), "after"),), "Failed", "Completed", ["A"], False, "2 rows"
    )
    sweep = SweepReport("parent", [], [failing], 0.5, 3)
    collector = Collector()
    collector.add_test("tests/test_a.py::test_sweep", "failed", prefect_runs, [sweep.to_data()])
    report = build_report(collector, None, [], None, Path.cwd())
    jsonschema.validate(json.loads(json.dumps(report)), json.loads(SCHEMA_PATH.read_text()))
    page = render_html(report)
    assert "fault sweep of &#x27;parent&#x27;: 1 point, 3 flow runs in 0.5 s, 1 failed" in page
    assert '<td>steady [after]</td><td>Failed</td><td>Completed</td><td class="fail">2 rows</td>' in page


def test_line_coverage_without_a_running_coverage_imports_no_coverage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from pytest_prefect_flows.coverage.lines import measure

    for name in [name for name in sys.modules if name == "coverage" or name.startswith("coverage.")]:
        monkeypatch.delitem(sys.modules, name)
    assert measure({"flows/etl.py:3": {"file": __file__, "first": 3, "last": 9}}) == {}
    assert "coverage" not in sys.modules
