"""pytest hooks of `native_harness.HarnessReuse`: count the tests run inside Prefect's harness.

Registered by `plugin.pytest_load_initial_conftests`, before any conftest imports Prefect's
harness. Under xdist each worker sends its count to the controller, which reports the total.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_prefect_flows.native_harness import HarnessReuse

WORKER_OUTPUT_KEY = "prefect_test_harness_tests"


class HarnessReuseHooks:
    def __init__(self, reuse: HarnessReuse) -> None:
        self.reuse = reuse
        self.tests = 0  # tests that ran inside `prefect_test_harness()`

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[Any]:
        if self.reuse.active:
            self.tests += 1
        return (yield)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output = getattr(session.config, "workeroutput", None)
        if output is not None:
            output[WORKER_OUTPUT_KEY] = self.tests

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.tests += int(getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY, 0))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.tests:
            terminalreporter.write_line(
                f"prefect-flows: {self.tests} tests ran inside prefect_test_harness(), served by the "
                "plugin's isolated backend (no second server started; -p no:prefect_flows runs Prefect's own)"
            )
