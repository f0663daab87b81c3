"""The sweeps of each test in the test report: a report section, printed at the end under `-v`.

The section travels with the test report (so from xdist workers too); a failing test shows it with
its other captured sections, and `-v` prints every test's sweep tables in the terminal summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_prefect_flows.sweep.report import SweepReport

SECTION = "Prefect fault sweep"


def add_section(report: pytest.TestReport, sweeps: list[SweepReport]) -> None:
    report.sections.append((SECTION, "\n\n".join(sweep.table() for sweep in sweeps)))


class SweepSummary:
    """Collects the sweep sections of the session's reports and prints them under `-v`."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tables: list[tuple[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and self.config.get_verbosity() > 0:
            self.tables += [(report.nodeid, text) for name, text in report.sections if name == SECTION]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.tables:
            return
        terminalreporter.write_sep("-", "prefect fault sweep")
        for nodeid, text in self.tables:
            terminalreporter.write_line(nodeid)
            for line in text.splitlines():
                terminalreporter.write_line(f"  {line}")
