"""How much of the session's isolated backend is ready before the first flow connects.

With `prefect_start = ahead` (the default) the slow part of the backend's start (importing
Prefect's server, finding the template database) is done during collection, as soon as a collected
test module uses Prefect's backend (it holds a flow, or one of its tests asks for a fixture such
as `run_flow` or `prefect_harness`); the server itself starts when the first flow connects, which
then waits only for the app to answer. Nothing is done ahead in a session that collects no such
module, under `--collect-only` or `--setup-plan`, on an xdist controller (each worker prepares its
own) or with a `server:` backend. `prefect_start = lazy` does it all on the first connection.

It is done in the main thread, not in a background one: Python runs one thread at a time, so a
thread would not make the import cheaper, and an import in another thread while collection
imports test modules can meet a partially initialised package.

Loading this module imports no Prefect.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_prefect_flows.backend import IsolatedBackend

START_MODES = ("ahead", "lazy")


# Fixtures whose tests talk to the backend.
BACKEND_FIXTURES = frozenset(
    {
        "prefect_harness",
        "run_flow",
        "prefect_runs",
        "prefect_logs",
        "prefect_events",
        "fail_task",
        "fake_blocks",
        "prefect_clock",
        "prefect_run_deployment",  # also requested by its deprecated alias run_deployment
        "prefect_deployments",
    }
)


def holds_flow(module: ModuleType) -> bool:
    """Whether a test module holds a Prefect flow, itself or in a module it imported.

    `from flows import etl` and `import flows` both count. Tasks alone do not: unit tests of a
    task's function (`task.fn(...)`) are common and need no backend.
    """
    flows = sys.modules.get("prefect.flows")
    flow_type = getattr(flows, "Flow", None)
    if not isinstance(flow_type, type):
        return False
    for value in list(vars(module).values()):
        if isinstance(value, flow_type):
            return True
        if isinstance(value, ModuleType) and any(
            isinstance(inner, flow_type) for inner in list(vars(value).values())
        ):
            return True
    return False


def uses_backend(items: Iterable[object]) -> bool:
    """Whether a collected test asks for one of the fixtures that talk to the backend."""
    return any(BACKEND_FIXTURES.intersection(getattr(item, "fixturenames", ())) for item in items)


class BackendStart:
    """Prepares the isolated backend during collection (`ahead`); reports the first wait (`-v`)."""

    def __init__(self, config: pytest.Config, backend: IsolatedBackend, ahead: bool) -> None:
        self.config = config
        self.backend = backend
        no_tests = config.option.collectonly or getattr(config.option, "setupplan", False)
        self.ahead = ahead and not no_tests

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Iterator[None]:
        report: Any = yield
        if self.ahead and self._needs_backend(collector, report):
            self.ahead = False
            self.backend.prepare_ahead()
        return report  # type: ignore[no-any-return]

    def _needs_backend(self, collector: pytest.Collector, report: Any) -> bool:
        if "prefect" not in sys.modules or not isinstance(collector, pytest.Module) or not report.passed:
            return False
        if self.config.pluginmanager.hasplugin("dsession"):  # an xdist controller: workers start theirs
            return False
        return holds_flow(collector.obj) or uses_backend(report.result)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        waited = self.backend.first_wait_seconds
        if waited is not None and self.config.option.verbose >= 1:
            how = (
                "prepared during collection" if self.backend.prepared_ahead else "started on first connection"
            )
            terminalreporter.write_line(
                f"prefect-flows: the first flow waited {waited:.2f} s for the isolated backend ({how})"
            )
