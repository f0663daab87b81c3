"""The flow-coverage report: one JSON-able dict (`build_report`), rendered as term, json or html.

The dict's shape is the documented `json:` schema (`schema.json` next to this module,
`docs/coverage.md`); bump `SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_prefect_flows.coverage.collector import REPORTED_STATES, Collector, Usage, runs_of
from pytest_prefect_flows.coverage.discovery import DEFAULT_EXCLUDE, Definition, Discovery, display_path
from pytest_prefect_flows.coverage.gates import GateResult, Problem
from pytest_prefect_flows.coverage.lines import percent

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("schema.json")


def build_report(
    collector: Collector,
    discovery: Discovery | None,
    gates: list[GateResult],
    problems: list[Problem] | None,
    rootdir: Path,
    count_direct: bool = True,
    commit: str | None = None,
) -> dict[str, Any]:
    """Everything the session found, as the documented JSON structure (`commit`: see `source_commit`)."""
    usage = collector.usage()
    known = discovery.by_key() if discovery else {}
    items = [_item(key, known.get(key), usage.get(key), collector, rootdir) for key in _keys(known, usage)]
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "commit": commit,
        "count_direct": count_direct,
        "flow_paths": discovery.paths if discovery else [],
        "source": discovery.source if discovery else None,
        "notes": discovery.notes if discovery else [],
        "unreadable": [
            {"path": module.path, "error": module.error}
            for module in (discovery.import_errors if discovery else [])
        ],
        "line_coverage": bool(collector.line_coverage),
        "summary": _summary(items, collector, discovery, count_direct),
        "import_check": None if problems is None else _import_check(discovery, problems),
        "gates": [vars(gate) for gate in gates],
        "flows": [item for item in items if item["kind"] == "flow"],
        "tasks": [item for item in items if item["kind"] == "task"],
        "tests": sorted(collector.tests, key=lambda test: test["nodeid"]),
    }


def _keys(known: dict[str, Definition], usage: dict[str, Usage]) -> list[str]:
    """Discovered items in definition order, then items that ran but were not discovered."""
    return list(dict.fromkeys([*known, *sorted(usage)]))


def _item(
    key: str, definition: Definition | None, usage: Usage | None, collector: Collector, rootdir: Path
) -> dict[str, Any]:
    function = collector.functions.get(key)
    if definition is not None:
        path, line = definition.path, definition.line
    elif function is not None:
        path, line = display_path(function["file"], rootdir), function["first"]
    else:
        path, line = None, None
    measured = collector.line_coverage.get(key)
    return {
        "key": key,
        "kind": definition.kind if definition else usage.kind,  # type: ignore[union-attr]
        "name": definition.name if definition else usage.name,  # type: ignore[union-attr]
        "module": definition.module if definition else usage.module,  # type: ignore[union-attr]
        "path": path,
        "line": line,
        "discovered": definition is not None,
        "retries": max(definition.retries if definition else 0, usage.retries if usage else 0),
        "runs": usage.runs if usage else 0,
        "status": "run" if usage else "direct" if key in collector.executed else "not run",
        "states": {
            state: usage.states[state] for state in REPORTED_STATES if usage and state in usage.states
        },
        "retried": bool(usage and usage.retried),
        "tests": usage.tests if usage else [],
        "line_coverage": None
        if measured is None
        else {
            "percent": percent(measured),
            "statements": len(measured["statements"]),
            "executed": len(measured["executed"]),
            "executed_lines": measured["executed"],
            "missing_lines": sorted(set(measured["statements"]) - set(measured["executed"])),
        },
    }


# CI systems name the commit they build; a shard that runs outside a git checkout still knows it.
_COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION", "CIRCLE_SHA1", "GIT_COMMIT")


def source_commit(rootdir: Path) -> str | None:
    """The commit the session tested: `git rev-parse HEAD` in the rootdir, else CI's variable, else None.

    The shards of one CI run carry the same commit, which is how a merge tells them from others.
    """
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=rootdir, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        done = None
    if done is not None and done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip()
    return next((os.environ[name] for name in _COMMIT_VARIABLES if os.environ.get(name)), None)


def _relative(filename: str, rootdir: Path) -> str:
    relative = os.path.relpath(filename, rootdir)
    return filename if relative.startswith("..") else relative


def _summary(
    items: list[dict[str, Any]], collector: Collector, discovery: Discovery | None, count_direct: bool
) -> dict[str, Any]:
    exercised = ("run", "direct") if count_direct else ("run",)

    def count(kind: str, *, discovered_only: bool, statuses: tuple[str, ...] | None) -> int:
        return sum(
            1
            for item in items
            if item["kind"] == kind
            and (item["discovered"] or not discovered_only)
            and (statuses is None or item["status"] in statuses)
        )

    # Without flow paths nothing is discovered: "run" then counts everything that ran.
    discovered_only = discovery is not None
    tasks_discovered = count("task", discovered_only=True, statuses=None)
    tasks_run = count("task", discovered_only=discovered_only, statuses=exercised)
    runs = [run for test in collector.tests for run in runs_of(test)]
    return {
        "flows_discovered": count("flow", discovered_only=True, statuses=None),
        "flows_run": count("flow", discovered_only=discovered_only, statuses=exercised),
        "flows_direct": count("flow", discovered_only=discovered_only, statuses=("direct",)),
        "tasks_discovered": tasks_discovered,
        "tasks_run": tasks_run,
        "tasks_direct": count("task", discovered_only=discovered_only, statuses=("direct",)),
        "task_coverage_percent": round(100.0 * tasks_run / tasks_discovered, 1) if tasks_discovered else None,
        "flow_runs": sum(1 for run in runs if run["kind"] == "flow"),
        "task_runs": sum(1 for run in runs if run["kind"] == "task"),
        "tests_with_runs": len(collector.tests),
    }


def _import_check(discovery: Discovery | None, problems: list[Problem]) -> dict[str, Any]:
    return {
        "passed": not problems,
        "modules": len(discovery.modules) if discovery else 0,
        "flows": len(discovery.flows) if discovery else 0,
        "problems": [vars(problem) for problem in problems],
    }


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


TERM_LISTED = 8  # flows/tasks named per list in the default `term` report; the rest are counted


def render_term(
    report: dict[str, Any], write: Callable[[str], None], full: bool = False, verbose: bool = False
) -> None:
    """The summary, what never ran and what only failed (a screen at most), then the gates.

    `full` (`term-full`, `-v`): one row per flow and task instead; `verbose` (`-vv`) adds the tests.
    """
    write(_summary_line(report))
    for note in report.get("notes", []):
        write(f"note: {note}")
    for unreadable in report.get("unreadable", []):
        write(f"UNREADABLE {unreadable['path']}: {unreadable['error']} (its flows and tasks are not counted)")
    items = [*report["flows"], *report["tasks"]]
    if full:
        _write_table(items, write, verbose)
    else:
        never_run = [item for item in items if item["discovered"] and item["status"] == "not run"]
        only_failed = [item for item in items if _is_project_code(item, report) and _only_failed(item)]
        _write_list("never run", never_run, write)
        _write_list("only failed", only_failed, write)
    for line in hook_error_lines(report):
        write(line)
    for gate in report["gates"]:
        write(gate_line(gate))


def _summary_line(report: dict[str, Any]) -> str:
    summary = report["summary"]
    totals = (
        f"{summary['flow_runs']} flow runs, {summary['task_runs']} task runs in "
        f"{summary['tests_with_runs']} tests"
    )
    if not report["flow_paths"]:
        return f"{totals} (set prefect_flow_paths to see what never ran)"
    if report.get("source") == "prefect.yaml":
        return (
            f"deployed flows ({', '.join(report['flow_paths'])}): "
            f"run {summary['flows_run']}/{summary['flows_discovered']}; {totals}"
        )
    parts = []
    for kind in ("tasks", "flows"):
        if not summary[f"{kind}_discovered"]:
            continue  # nothing of that kind to cover: no "0/0"
        part = f"{kind} run {summary[f'{kind}_run']}/{summary[f'{kind}_discovered']}"
        if kind == "tasks":
            part += f" ({summary['task_coverage_percent']}%)"
        direct = summary.get(f"{kind}_direct", 0)
        parts.append(part + (f" incl. {direct} only through .fn()" if direct else ""))
    found = ", ".join(parts) or "no flows or tasks found"
    return f"{', '.join(report['flow_paths'])}: {found}; {totals}"


def _is_project_code(item: dict[str, Any], report: dict[str, Any]) -> bool:
    """Discovered; or, with nothing discovered, defined in the rootdir outside test files.

    Flows defined in test files or temporary directories (often failing on purpose) count in the
    totals but are not the project's flows.
    """
    if item["discovered"] or report.get("source"):
        return bool(item["discovered"])
    path = item["path"] or ""
    name = path.rpartition("/")[2]
    in_test_file = any(fnmatch.fnmatch(name, pattern) for pattern in DEFAULT_EXCLUDE)
    return bool(path) and not path.startswith(("<tmp>/", "/")) and not in_test_file


def _only_failed(item: dict[str, Any]) -> bool:
    states = item["states"]
    return bool(item["runs"]) and not ({"Completed", "Cached"} & set(states))


def _write_list(title: str, items: list[dict[str, Any]], write: Callable[[str], None]) -> None:
    if not items:
        return
    kinds = [kind for kind in ("flow", "task") if any(item["kind"] == kind for item in items)]
    counts = ", ".join(f"{sum(1 for item in items if item['kind'] == kind)} {kind}s" for kind in kinds)
    write(f"{title}: {counts}")
    rows = [_term_row(item) for item in items[:TERM_LISTED]]
    _write_rows(rows, write, indent="  ")
    if len(items) > TERM_LISTED:
        write(f"  ... and {len(items) - TERM_LISTED} more (--prefect-report=term-full or -v lists them all)")


def _write_table(items: list[dict[str, Any]], write: Callable[[str], None], verbose: bool) -> None:
    rows = [_term_row(item) for item in items]
    for item, line in zip(items, _aligned(rows), strict=True):
        write(line)
        if verbose:
            for nodeid in item["tests"]:
                write(f"      {nodeid}")


def _write_rows(rows: list[tuple[str, str, str, str]], write: Callable[[str], None], indent: str) -> None:
    for line in _aligned(rows):
        write(indent + line)


def _aligned(rows: list[tuple[str, str, str, str]]) -> list[str]:
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]


def hook_error_lines(report: dict[str, Any]) -> list[str]:
    """`HOOK ERROR <test>: hook ... of flow run ... raised ...`, one line per state hook that raised."""
    return [
        f"HOOK ERROR {nodeid}: hook {error['hook']!r} of {error['kind']} run {error['run']!r} "
        f"raised {error['error']}"
        for nodeid, error in hook_errors(report)
    ]


def hook_errors(report: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(test node id, hook error) for every state hook that raised in the session's runs."""
    return [
        (test["nodeid"], error)
        for test in report["tests"]
        for run in runs_of(test)
        for error in run.get("hook_errors", [])
    ]


def gate_line(gate: dict[str, Any]) -> str:
    return f"{'PASSED' if gate['passed'] else 'FAILED'} {gate['option']}: {gate['message']}"


def _term_row(item: dict[str, Any]) -> tuple[str, str, str, str]:
    where = f"{item['path']}:{item['line']}" if item["path"] else item["module"]
    if item["status"] == "not run":
        return item["kind"], item["name"], where, "NOT RUN"
    if item["status"] == "direct":
        return item["kind"], item["name"], where, "DIRECT (function called outside a flow run only)"
    states = " ".join(f"{state} {count}" for state, count in item["states"].items())
    tests = len(item["tests"])
    text = f"runs {item['runs']}  [{states}]  {tests} test{'s' if tests != 1 else ''}"
    coverage = item["line_coverage"]
    if coverage and coverage["percent"] is not None:
        text += f"  lines {coverage['percent']:g}%"
    return item["kind"], item["name"], where, text
