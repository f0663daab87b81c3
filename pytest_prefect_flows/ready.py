"""When the session's isolated backend starts: ahead of the first flow, or on its first connection.

With `prefect_start = background` (the default) the backend starts in a background thread as soon
as a collected test module uses Prefect (it imported Prefect, a flow or a task), so the import of
Prefect's server overlaps the rest of collection and the first tests. Nothing starts in a session
that collects no such module, under `--collect-only` or `--setup-plan`, on an xdist controller
(each worker starts its own) or with a `server:` backend.

Loading this module imports no Prefect.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_prefect_flows.backend import IsolatedBackend

START_MODES = ("background", "lazy")

# How long a test that may freeze the clock waits for the server's imports to finish first.
_PREPARE_TIMEOUT = 120.0


def _from_prefect(value: object) -> bool:
    """Whether `value` is Prefect's (a module, a flow, a task, `flow`, `task`, a class...)."""
    if isinstance(value, ModuleType):
        name = value.__name__
    elif isinstance(value, (type, FunctionType)):
        name = str(getattr(value, "__module__", None) or "")
    else:
        name = type(value).__module__
    return name == "prefect" or name.startswith("prefect.")


def uses_prefect(module: ModuleType) -> bool:
    """Whether a test module holds something of Prefect's, itself or in a module it imported.

    `from flows import etl` (a flow) and `import flows` (a module holding flows) both count; a
    module that imports Prefect only inside functions does not, until one of its tests runs.
    """
    for value in list(vars(module).values()):
        if _from_prefect(value):
            return True
        if isinstance(value, ModuleType) and any(
            _from_prefect(inner) for inner in list(vars(value).values())
        ):
            return True
    return False


class BackendStart:
    """Starts the isolated backend ahead of the first flow (`ahead`); reports the first wait (`-v`)."""

    def __init__(self, config: pytest.Config, backend: IsolatedBackend, ahead: bool) -> None:
        self.config = config
        self.backend = backend
        no_tests = config.option.collectonly or getattr(config.option, "setupplan", False)
        self.ahead = ahead and not no_tests

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Iterator[None]:
        report: Any = yield
        if self.ahead and self._module_uses_prefect(collector, report):
            self.ahead = False
            self.backend.start_in_background()
        return report  # type: ignore[no-any-return]

    def _module_uses_prefect(self, collector: pytest.Collector, report: Any) -> bool:
        if "prefect" not in sys.modules or not isinstance(collector, pytest.Module) or not report.passed:
            return False
        if self.config.pluginmanager.hasplugin("dsession"):  # an xdist controller: workers start theirs
            return False
        return uses_prefect(collector.obj)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """A test that may freeze the clock waits until the server's modules are imported: imported
        under freezegun, they would bind its fake datetimes."""
        if "freezegun" in sys.modules and self.backend.preparing:
            self.backend.wait_prepared(_PREPARE_TIMEOUT)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        waited = self.backend.first_wait_seconds
        if waited is not None and self.config.option.verbose >= 1:
            how = "started ahead" if self.backend.started_ahead else "started on first connection"
            terminalreporter.write_line(
                f"prefect-flows: the first flow waited {waited:.2f} s for the isolated backend ({how})"
            )
