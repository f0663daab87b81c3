"""Merge the JSON flow-coverage reports of CI shards and apply the gates to the suite they ran together.

A shard (one job of a CI matrix, e.g. pytest-split's `--splits 3 --group 2`) runs part of the suite,
so it skips the gates; each shard writes `--prefect-report=json:PATH`, and one job afterwards runs::

    python -m pytest_prefect_flows merge reports/*.json --fail-under 90 --require-retry-tested

A flow or task counts as run when any shard ran it: tests, runs, states, direct calls, line coverage
and import-check results are united, and the gates are the session's own (`gates.run_gates`), with
the same messages and exit codes. Reports of different commits or flow paths are refused: their
`path:line` keys would not name the same functions.

Works without pytest::

    merged = merge_reports([Path("shard-1.json"), Path("shard-2.json")])
    results = merged.run_gates(fail_under=90, require_retries=True)
    report = merged.report(results)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_prefect_flows.coverage.collector import Collector
from pytest_prefect_flows.coverage.discovery import Definition, Discovery
from pytest_prefect_flows.coverage.gates import GateResult, Problem, run_gates
from pytest_prefect_flows.coverage.report import SCHEMA_VERSION, build_report
from pytest_prefect_flows.exceptions import UsageError

# pytest's exit codes, which the session's gates use too
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 4
HOW_TO_WRITE = "each shard writes one with --prefect-report=json:PATH"


@dataclass
class Merged:
    """What the shards ran, united: a collector and discovery as one session would have had them."""

    reports: list[Path]
    collector: Collector
    discovery: Discovery | None
    import_check: dict[str, Any] | None
    commit: str | None
    count_direct: bool

    def run_gates(self, *, fail_under: float | None, require_retries: bool) -> list[GateResult]:
        if fail_under and self.discovery is None:
            raise UsageError(
                "--fail-under needs prefect_flow_paths to know which flows and tasks exist, and the "
                "reports name none; run the shards with prefect_flow_paths set (e.g. "
                "--prefect-flow-paths=my_flows)."
            )
        direct = self.collector.executed if self.count_direct else set()
        return run_gates(
            self.discovery,
            self.collector.usage(),
            fail_under=fail_under,
            require_retries=require_retries,
            direct=direct,
        )

    def report(self, gates: list[GateResult]) -> dict[str, Any]:
        """The merged report, in the shards' own JSON structure."""
        report = build_report(
            self.collector, self.discovery, gates, None, Path.cwd(), self.count_direct, self.commit
        )
        report["import_check"] = self.import_check
        return report


def merge_reports(paths: Sequence[Path]) -> Merged:
    """Read and unite the reports; `UsageError` when one is unreadable or they come from different suites."""
    if not paths:
        raise UsageError(f"no report to merge: pass the shards' JSON reports ({HOW_TO_WRITE}).")
    reports = [(Path(path), load_report(Path(path))) for path in paths]
    _check_same_suite(reports)
    _check_disjoint(reports)
    collector = Collector(Path.cwd())
    for _, report in reports:
        collector.merge(_collected(report))
    known_commits = [report["commit"] for _, report in reports if report.get("commit")]
    return Merged(
        reports=[path for path, _ in reports],
        collector=collector,
        discovery=_discovery([report for _, report in reports]),
        import_check=_import_check([report for _, report in reports]),
        commit=known_commits[0] if known_commits else None,
        count_direct=all(report.get("count_direct", True) for _, report in reports),
    )


def load_report(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the report {path}: {exc.strerror or exc}; {HOW_TO_WRITE}.") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON ({exc}); {HOW_TO_WRITE}.") from None
    if not isinstance(report, dict) or not {"schema_version", "tests", "flows", "tasks"} <= report.keys():
        raise UsageError(f"{path} is not a prefect flow coverage report; {HOW_TO_WRITE}.")
    if report["schema_version"] != SCHEMA_VERSION:
        raise UsageError(
            f"{path} has report schema {report['schema_version']!r}, this pytest-prefect-flows reads "
            f"{SCHEMA_VERSION}; merge with the pytest-prefect-flows version the shards ran."
        )
    return report


def _check_same_suite(reports: list[tuple[Path, dict[str, Any]]]) -> None:
    """Refuse reports of different commits (when known) or flow paths: they test different code."""
    for field, what in (("commit", "commits"), ("flow_paths", "flow paths"), ("source", "flow sources")):
        seen: dict[str, list[Path]] = {}
        for path, report in reports:
            value = report.get(field)
            if field == "commit" and not value:
                continue  # unknown (no git, no CI variable): nothing to compare
            shown = ", ".join(value) if isinstance(value, list) else str(value)
            seen.setdefault(shown or "none", []).append(path)
        if len(seen) > 1:
            listing = "; ".join(f"{value} in {', '.join(map(str, paths))}" for value, paths in seen.items())
            raise UsageError(
                f"the reports come from different {what} ({listing}); merge only the shards of one "
                "CI run, which test one commit with the same prefect_flow_paths."
            )


def _check_disjoint(reports: list[tuple[Path, dict[str, Any]]]) -> None:
    """Refuse a test reported by two reports: its runs would count twice (one report given twice?)."""
    seen: dict[str, Path] = {}
    for path, report in reports:
        for test in report["tests"]:
            first = seen.setdefault(test["nodeid"], path)
            if first is not path:
                raise UsageError(
                    f"{test['nodeid']} is in both {first} and {path}: shards run disjoint parts of the "
                    "suite; pass each shard's report once."
                )


def _collected(report: dict[str, Any]) -> dict[str, Any]:
    """A shard's report as `Collector.to_data()` would have given it."""
    items = [*report["flows"], *report["tasks"]]
    return {
        "tests": report["tests"],
        "functions": {
            item["key"]: {"file": item["path"], "first": item["line"], "last": item["line"]}
            for item in items
            if item["path"] is not None and not item["discovered"]
        },
        "line_coverage": {
            item["key"]: _lines(item) for item in items if "executed_lines" in (item["line_coverage"] or {})
        },
        "executed": [item["key"] for item in items if item["status"] == "direct"],
    }


def _lines(item: dict[str, Any]) -> dict[str, Any]:
    executed, missing = item["line_coverage"]["executed_lines"], item["line_coverage"]["missing_lines"]
    return {"file": item["path"], "statements": sorted({*executed, *missing}), "executed": executed}


def _discovery(reports: list[dict[str, Any]]) -> Discovery | None:
    """The discovered flows and tasks (the same in every shard of one commit)."""
    first = reports[0]
    if not first["flow_paths"]:
        return None
    found = Discovery(list(first["flow_paths"]), source=first["source"] or "flow_paths")
    found.notes = list(first.get("notes", []))
    for report in reports:
        for item in [*report["flows"], *report["tasks"]]:
            if item["discovered"]:
                found.add(
                    Definition(
                        item["kind"],
                        item["key"],
                        item["name"],
                        item["module"],
                        item["path"],
                        item["line"],
                        retries=item["retries"],
                    )
                )
    return found


def _import_check(reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The shards' import checks, united (None when no shard ran one)."""
    checks = [report["import_check"] for report in reports if report.get("import_check") is not None]
    if not checks:
        return None
    problems = list({json.dumps(p, sort_keys=True): p for c in checks for p in c["problems"]}.values())
    return {
        "passed": not problems,
        "modules": max(check["modules"] for check in checks),
        "flows": max(check["flows"] for check in checks),
        "problems": problems,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT", help="a shard's JSON report")
    parser.add_argument(
        "--fail-under",
        type=_percent,
        metavar="N",
        help="fail when less than N percent of the discovered tasks ran in any shard",
    )
    parser.add_argument(
        "--require-retry-tested",
        action="store_true",
        help="fail when a task with retries>0 was never seen retrying in any shard",
    )
    parser.add_argument(
        "--check-imports",
        action="store_true",
        help="fail on the problems of the shards' import checks (--prefect-check-imports)",
    )
    parser.add_argument(
        "--report",
        action="append",
        type=_report_spec,
        metavar="SPEC",
        help="term (default, fits a screen) | term-full | json:PATH | html:PATH (repeatable)",
    )


def run(args: argparse.Namespace, write: Callable[[str], None] = print) -> int:
    """The `merge` command: 0 when every gate passed, 1 when one failed, 4 on unusable input."""
    try:
        merged = merge_reports(args.reports)
        if args.check_imports and merged.import_check is None:
            raise UsageError(
                "--check-imports: none of the reports holds an import check; run the shards (one is "
                "enough) with --prefect-check-imports."
            )
        gates = merged.run_gates(fail_under=args.fail_under, require_retries=args.require_retry_tested)
    except UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = merged.report(gates)
    _write_outputs(report, merged, args.report or ["term"], write)
    problems = bool(args.check_imports and report["import_check"]["problems"])
    return EXIT_FAILED if problems or any(not gate.passed for gate in gates) else EXIT_OK


def _write_outputs(
    report: dict[str, Any], merged: Merged, specs: list[str], write: Callable[[str], None]
) -> None:
    from pytest_prefect_flows.coverage.html_report import write_html
    from pytest_prefect_flows.coverage.report import gate_line, render_term, write_json

    commit = f" of commit {merged.commit[:12]}" if merged.commit else ""
    if {"term", "term-full"} & set(specs):
        count = len(merged.reports)
        write(f"prefect flow coverage: {count} report{'s' if count != 1 else ''} merged{commit}")
        render_term(report, write, full="term-full" in specs)
    else:
        for gate in report["gates"]:
            write(gate_line(gate))
    _write_import_check(report["import_check"], write)
    writers = {"json": write_json, "html": write_html}
    for spec in specs:
        kind, _, target = spec.partition(":")
        if kind in writers:
            writers[kind](report, Path(target))
            write(f"{kind} report written to {Path(target).resolve()}")


def _write_import_check(check: dict[str, Any] | None, write: Callable[[str], None]) -> None:
    if check is None:
        return
    if not check["problems"]:
        write(f"prefect import check passed: {check['modules']} modules, {check['flows']} flows")
        return
    write(f"prefect import check: {len(check['problems'])} problems")
    for problem in check["problems"]:
        write(f"FAILED {Problem(**problem)}")


def _percent(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 100:
        raise argparse.ArgumentTypeError(f"takes a percentage (0-100), got {value!r}")
    return number


def _report_spec(value: str) -> str:
    kind, _, path = value.partition(":")
    if (kind in ("term", "term-full") and not path) or (kind in ("json", "html") and path):
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a report; use term, term-full, json:PATH or html:PATH"
    )
