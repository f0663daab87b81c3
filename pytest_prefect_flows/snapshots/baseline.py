"""Recorded baselines: `--prefect-record=PATH` writes every test's run trees to one JSON file;
`--prefect-compare=PATH` fails the tests whose runs differ from it and prints the differences.

A baseline holds, per test node id, the tree (see `tree.run_tree`) of each top-level flow run the
test started: states, attempts, retry delays, task sets. No parameters, results, ids or times.

Under xdist each worker computes its tests' trees and sends them on the test report (an attribute
that survives the report's serialization); the controller collects them in
`pytest_runtest_logreport` and writes the file once. Comparing happens where the test ran, against
the file each process reads.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_prefect_flows.exceptions import UsageError

REPORT_ATTRIBUTE = "prefect_run_trees"
FORMAT_VERSION = 1


class BaselinePlugin:
    """Registered by `plugin.pytest_configure` when `--prefect-record` or `--prefect-compare` is given."""

    def __init__(self, config: pytest.Config, record: str | None, compare: str | None) -> None:
        self.record_path = Path(record) if record else None
        self.compare_path = Path(compare) if compare else None
        self.baseline = read_baseline(self.compare_path) if self.compare_path else None
        self.recorded: dict[str, list[dict[str, Any]]] = {}
        self._is_worker = hasattr(config, "workerinput")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when != "call":
            return report
        trees = _trees_of(item)
        if trees is None:
            return report
        if self.record_path is not None:
            setattr(report, REPORT_ATTRIBUTE, trees)
        if self.baseline is not None and report.passed and item.nodeid in self.baseline:
            expected = self.baseline[item.nodeid]
            if expected != trees:
                report.outcome = "failed"
                report.longrepr = describe_difference(expected, trees, self.compare_path)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        trees = getattr(report, REPORT_ATTRIBUTE, None)
        if report.when == "call" and trees is not None:
            self.recorded[report.nodeid] = trees

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.record_path is None or self._is_worker:
            return
        write_baseline(self.record_path, self.recorded)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.record_path is not None and not self._is_worker:
            terminalreporter.write_line(
                f"prefect-flows: recorded the runs of {len(self.recorded)} tests in {self.record_path}"
            )


def _trees_of(item: pytest.Item) -> list[dict[str, Any]] | None:
    from pytest_prefect_flows.plugin import run_log_key
    from pytest_prefect_flows.snapshots.tree import run_tree

    run_log = item.stash.get(run_log_key, None)
    if run_log is None:
        return None
    return [run_tree(run) for run in run_log.top_level]


def read_baseline(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"--prefect-compare={path}: no such file; record one first with --prefect-record={path}"
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"--prefect-compare={path}: cannot read it as a baseline ({exc}); "
            f"record it again with --prefect-record={path}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), dict):
        raise UsageError(
            f"--prefect-compare={path} is not a baseline written by --prefect-record "
            f"(no 'tests' mapping); record it again with --prefect-record={path}"
        )
    tests: dict[str, list[dict[str, Any]]] = data["tests"]
    return tests


def write_baseline(path: Path, tests: dict[str, list[dict[str, Any]]]) -> None:
    from pytest_prefect_flows._compat import prefect_version

    payload = {"format": FORMAT_VERSION, "prefect": prefect_version(), "tests": dict(sorted(tests.items()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)


def describe_difference(
    expected: list[dict[str, Any]], observed: list[dict[str, Any]], baseline: Path | None
) -> str:
    """A unified diff of the baseline's run trees against this run's."""
    from pytest_prefect_flows.snapshots.tree import render_tree

    before = [line for tree in expected for line in render_tree(tree).splitlines()] or ["(no flow runs)"]
    after = [line for tree in observed for line in render_tree(tree).splitlines()] or ["(no flow runs)"]
    diff = difflib.unified_diff(before, after, "baseline", "this run", lineterm="", n=2)
    return (
        f"The flow runs of this test differ from the baseline {baseline}:\n"
        + "\n".join(diff)
        + f"\nIf the change is intended, record the baseline again with --prefect-record={baseline}"
    )
