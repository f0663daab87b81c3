"""Prefect's own `prefect_test_harness()`, made to reuse the plugin's isolated backend.

Prefect's docs (and most flow repositories) test with a session-scoped autouse fixture that enters
`prefect.testing.utilities.prefect_test_harness()`, which starts a server subprocess on a fresh
database. Inside a plugin session every test already runs against the isolated backend, so the
second server only costs its start-up. `HarnessReuse` replaces the function in
`prefect.testing.utilities` (when that module is imported, so loading the plugin still imports no
Prefect) with one that activates the plugin's backend and counts the tests it was entered for.
`-p no:prefect_flows` leaves Prefect's function untouched.

Works without pytest::

    with HarnessReuse(lambda: backend):
        from prefect.testing.utilities import prefect_test_harness
        with prefect_test_harness():   # no server started: `backend` serves the flows
            my_flow()
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows._import_hook import AfterImport

if TYPE_CHECKING:
    from pytest_prefect_flows.backend import IsolatedBackend, RemoteBackend

MODULE = "prefect.testing.utilities"
FUNCTION = "prefect_test_harness"


class HarnessReuse:
    """While entered, `prefect_test_harness()` activates `backend` instead of starting a server."""

    def __init__(self, backend: Callable[[], IsolatedBackend | RemoteBackend]) -> None:
        self.backend = backend  # called on entry: the plugin's backend is made after conftests load
        self.active = 0  # harness contexts currently entered
        self.entered = 0  # times a harness context was entered
        self._original: Any = None
        self._patched: ModuleType | None = None
        self._finder = AfterImport(MODULE, self._patch)

    def __enter__(self) -> HarnessReuse:
        module = sys.modules.get(MODULE)
        if module is not None:
            self._patch(module)
        else:
            self._finder.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._finder.__exit__()
        if self._patched is not None:
            setattr(self._patched, FUNCTION, self._original)
            self._patched = None

    def _patch(self, module: ModuleType) -> None:
        self._original = getattr(module, FUNCTION, None)
        setattr(module, FUNCTION, self.prefect_test_harness)
        self._patched = module

    @contextlib.contextmanager
    def prefect_test_harness(self, server_startup_timeout: int | None = 30) -> Iterator[None]:
        """Prefect's test harness, served by the plugin's isolated backend (no server started).

        `server_startup_timeout` is accepted for compatibility: the backend starts on first use.
        """
        self.backend().activate()
        self.active += 1
        self.entered += 1
        try:
            yield
        finally:
            self.active -= 1
