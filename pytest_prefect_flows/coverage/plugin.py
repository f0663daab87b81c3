"""pytest hooks of flow coverage (registered by `plugin.pytest_configure`).

Discovery and the import check run at session start (on the controller; workers only discover, to
measure line coverage); each test's runs are collected after its teardown; gates, reports and the
exit status are settled in `pytest_sessionfinish`. Under xdist each worker sends its collected data
through `config.workeroutput` and the controller merges it in `pytest_testnodedown`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_prefect_flows import _options
from pytest_prefect_flows.coverage.collector import Collector
from pytest_prefect_flows.coverage.discovery import DEFAULT_EXCLUDE, Discovery, discover
from pytest_prefect_flows.coverage.gates import GateResult, Problem
from pytest_prefect_flows.coverage.selection import import_check_alone

if TYPE_CHECKING:
    from pytest_prefect_flows.coverage.direct import FunctionWatch

WORKER_OUTPUT_KEY = "prefect_flow_coverage"


class FlowCoveragePlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.collector = Collector(config.rootpath)
        self.discovery: Discovery | None = None
        self.problems: list[Problem] | None = None
        self.gates: list[GateResult] = []
        self.gates_skipped: str | None = None
        self.report: dict[str, Any] | None = None
        self.written: list[str] = []
        self._outcome: dict[str, str] = {}
        self._tests_ran = False
        self._is_worker = hasattr(config, "workerinput")
        self._watch: FunctionWatch | None = None
        self._check_alone = import_check_alone(config)
        if self._check_alone and getattr(config.option, "dist", "no") != "no":
            config.option.dist = "no"  # no tests to run, so no xdist workers (its configure runs last)
        if config.pluginmanager.hasplugin("xdist") and not self._is_worker:
            config.pluginmanager.register(
                _XdistControllerHooks(self.collector), "prefect_flows_coverage_xdist"
            )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        flow_paths = _options.get(self.config, "prefect_flow_paths")
        self._check_needs_flow_paths(flow_paths)
        self.discovery = self._discover(flow_paths)
        if self.discovery is not None and (self.discovery.flows or self.discovery.tasks):
            from pytest_prefect_flows.coverage.direct import FunctionWatch

            found = [*self.discovery.flows, *self.discovery.tasks]
            self._watch = FunctionWatch({(item.file, item.first_line): item.key for item in found})
            self._watch.__enter__()
        if self.config.getoption("prefect_check_imports") and not self._is_worker and self.discovery:
            from pytest_prefect_flows.coverage.import_check import check_imports

            self.problems = check_imports(self.discovery, self.config.rootpath)

    def _discover(self, flow_paths: list[str]) -> Discovery | None:
        """The flow paths' flows and tasks; without flow paths, the flows `prefect.yaml` deploys."""
        if flow_paths:
            exclude = [*DEFAULT_EXCLUDE, *self.config.getini("python_files")]
            return discover(flow_paths, self.config.rootpath, exclude)
        if self._is_worker:
            return None
        from pytest_prefect_flows.coverage.discovery import discover_deployments

        found = discover_deployments(self.config.rootpath)
        return found if found.paths else None

    def _check_needs_flow_paths(self, flow_paths: list[str]) -> None:
        if flow_paths:
            return
        wanted = [
            flag
            for flag, value in (
                ("--prefect-check-imports", self.config.getoption("prefect_check_imports")),
                ("--prefect-cov-fail-under", _options.get(self.config, "prefect_cov_fail_under")),
            )
            if value
        ]
        if wanted:
            from pytest_prefect_flows.exceptions import UsageError

            raise UsageError(
                f"{' and '.join(wanted)} need prefect_flow_paths to know which flows and tasks exist; "
                'set it in [tool.pytest.ini_options] (e.g. prefect_flow_paths = ["my_flows"]) or pass '
                "--prefect-flow-paths=my_flows."
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        """The import check alone collects nothing (not even `testpaths`)."""
        if not self._check_alone:
            return None
        session.items = []
        session.testscollected = 0
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
        from pytest_prefect_flows.plugin import run_log_key, sweep_reports_key

        self._outcome[item.nodeid] = "passed"
        try:
            return (yield)
        finally:
            outcome = self._outcome.pop(item.nodeid)
            run_log = item.stash.get(run_log_key, None)
            if run_log is not None:
                sweeps = [sweep.to_data() for sweep in item.stash.get(sweep_reports_key, [])]
                self.collector.add_test(item.nodeid, outcome, run_log, sweeps)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._tests_ran = True  # also on the xdist controller, which gets its workers' reports
        if report.nodeid not in self._outcome:
            return  # a report from an xdist worker: the worker collects that test
        if report.failed:
            self._outcome[report.nodeid] = "failed"
        elif self._outcome[report.nodeid] == "passed" and (report.skipped or report.when == "call"):
            self._outcome[report.nodeid] = _outcome_of(report)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Iterator[Any]:
        # Innermost wrapper: coverage.py (pytest-cov) is still measuring when this resumes.
        try:
            return (yield)
        finally:
            if self.discovery is not None:
                self.collector.remember_definitions([*self.discovery.flows, *self.discovery.tasks])
            self.collector.measure_lines()
            self._note_executed_functions()

    def _note_executed_functions(self) -> None:
        """Which discovered flow and task functions ran at all (the watch, and coverage.py's lines)."""
        if self._watch is not None:
            self._watch.__exit__()
            self.collector.executed |= self._watch.ran
            self._watch = None
        if self.discovery is not None:
            from pytest_prefect_flows.coverage.direct import ran_per_line_coverage

            keys = {item.key for item in [*self.discovery.flows, *self.discovery.tasks]}
            self.collector.executed |= ran_per_line_coverage(self.collector.line_coverage, keys)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._watch is not None:  # the test loop never ran (e.g. interrupted at collection)
            self._watch.__exit__()
        if self._is_worker:
            output = self.config.workeroutput  # type: ignore[attr-defined]
            output[WORKER_OUTPUT_KEY] = json.dumps(self.collector.to_data())
            return
        if not self._has_anything_to_report():
            return
        # `--fixtures`, `--collect-only`, a selection of nothing, a collection error: no report
        if self._tests_ran:
            gates = self._run_gates()
            self.gates_skipped = self._why_skip_gates(session, gates)
            self.gates = [] if self.gates_skipped else gates
        from pytest_prefect_flows.coverage.report import build_report

        self.report = build_report(
            self.collector,
            self.discovery,
            self.gates,
            self.problems,
            self.config.rootpath,
            count_direct=self._count_direct(),
        )
        self._write_files(self.report)
        session.exitstatus = self._exit_status(pytest.ExitCode(session.exitstatus))

    def _has_anything_to_report(self) -> bool:
        return bool(self.discovery is not None or self.collector.tests)

    def _run_gates(self) -> list[GateResult]:
        from pytest_prefect_flows.coverage.gates import run_gates

        return run_gates(
            self.discovery,
            self.collector.usage(),
            fail_under=_options.get(self.config, "prefect_cov_fail_under"),
            require_retries=bool(_options.get(self.config, "prefect_require_retry_tested")),
            direct=self.collector.executed if self._count_direct() else set(),
        )

    def _why_skip_gates(self, session: pytest.Session, gates: list[GateResult]) -> str | None:
        """Under `prefect_gates = whole-suite`, the note saying why a selection skips the gates."""
        if not gates or _options.get(self.config, "prefect_gates") == "always":
            return None
        from pytest_prefect_flows.coverage.selection import selection_reason

        reason = selection_reason(self.config, session)
        if reason is None:
            return None
        names = ", ".join(gate.option for gate in gates)
        return f"prefect gates skipped ({names}): {reason}; --prefect-gates=always applies them anyway"

    def _count_direct(self) -> bool:
        return bool(_options.get(self.config, "prefect_cov_count_direct"))

    def _exit_status(self, status: pytest.ExitCode) -> pytest.ExitCode:
        """Failed gates or import problems fail a session that would otherwise pass.

        `--prefect-check-imports` with no tests collected is a run of the check alone: it exits 0
        when the check passes instead of pytest's 5 ("no tests collected").
        """
        failed = bool(self.problems) or any(not gate.passed for gate in self.gates)
        if failed and status in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            return pytest.ExitCode.TESTS_FAILED
        if not failed and self.problems is not None and status == pytest.ExitCode.NO_TESTS_COLLECTED:
            return pytest.ExitCode.OK
        return status

    def _write_files(self, report: dict[str, Any]) -> None:
        from pytest_prefect_flows.coverage.html_report import write_html
        from pytest_prefect_flows.coverage.report import write_json

        writers = {"json": write_json, "html": write_html}
        specs = _options.get(self.config, "prefect_report")
        if any(spec.partition(":")[0] in writers for spec in specs):  # a file: `git rev-parse` is worth it
            from pytest_prefect_flows.coverage.report import source_commit

            report["commit"] = source_commit(self.config.rootpath)
        for spec in specs:
            kind, _, target = spec.partition(":")
            if kind in writers:
                path = Path(self.config.invocation_params.dir, target)
                writers[kind](report, path)
                self.written.append(f"{kind} report written to {path}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is None:
            return
        from pytest_prefect_flows.coverage.report import gate_line, render_term

        write = terminalreporter.write_line
        reports = _options.get(self.config, "prefect_report")
        if {"term", "term-full"} & set(reports) and self._tests_ran:
            verbosity = self.config.get_verbosity()
            terminalreporter.write_sep("-", "prefect flow coverage")
            render_term(
                self.report, write, full="term-full" in reports or verbosity > 0, verbose=verbosity > 1
            )
        elif self.gates:
            terminalreporter.write_sep("-", "prefect flow coverage gates")
            for gate in self.report["gates"]:
                write(gate_line(gate))
        if self.gates_skipped:
            write(self.gates_skipped, yellow=True)
        self._write_import_check(terminalreporter)
        for line in self.written:
            write(line)
        failed = [gate for gate in self.gates if not gate.passed]
        if failed:  # pytest's last line, e.g. "2 passed, 1 gate failed", not green
            terminalreporter.stats.setdefault("gates failed" if len(failed) > 1 else "gate failed", failed)

    def _write_import_check(self, terminalreporter: Any) -> None:
        if self.problems is None or self.discovery is None:
            return
        modules, flows = len(self.discovery.modules), len(self.discovery.flows)
        if not self.problems:
            terminalreporter.write_sep("-", "prefect import check passed")
            terminalreporter.write_line(
                f"{modules} modules imported, {flows} flows built their parameter schema and a deployment"
            )
            return
        terminalreporter.write_sep("=", f"prefect import check: {len(self.problems)} problems", red=True)
        for problem in self.problems:
            terminalreporter.write_line(f"FAILED {problem}", red=True)


def _outcome_of(report: pytest.TestReport) -> str:
    """`passed`/`skipped`, or `xfailed`/`xpassed` for a test marked xfail (pytest's own terms)."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return "skipped" if report.skipped else "passed"


class _XdistControllerHooks:
    """Registered only when xdist is loaded: merges what each worker collected."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
        if data:
            self.collector.merge(json.loads(data))
