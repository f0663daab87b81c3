"""What both backends share: isolated home, environment and settings, client factories."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_prefect_flows.backend.environment import (
    SettingsScope,
    isolation_env,
    patched_environ,
    test_settings,
)
from pytest_prefect_flows.backend.tempdirs import TEMP_PREFIX, remove_stale_temp_dirs

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.settings import Settings


class Backend:
    """What both backends share: isolated home, environment and settings, client factories."""

    api_url: str
    kind: str = "backend"

    def __init__(self, base_dir: Path | None = None) -> None:
        self._base_dir = base_dir
        self.session_id = uuid.uuid4().hex[:12]
        self.home = Path()
        self._tmp: Path | None = None
        self._env: contextlib.ExitStack | None = None
        self._scope: SettingsScope | None = None
        self._lock = threading.RLock()

    def _environment(self) -> dict[str, str | None]:
        return isolation_env(self.home, self.api_url, None)

    def _make_home(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=self._base_dir))
        self.home = self._tmp / "home"
        self.home.mkdir()

    def _enter_environment(self) -> None:
        self._env = contextlib.ExitStack()
        self._env.enter_context(patched_environ(self._environment()))

    def activate(self) -> None:
        """Make the backend's settings current in Prefect (imports Prefect; idempotent)."""
        with self._lock:
            if self._scope is None:
                self._scope = SettingsScope(test_settings())
                self._scope.enter()

    @property
    def settings(self) -> Settings:
        self.activate()
        assert self._scope is not None
        return self._scope.settings

    def client(self) -> PrefectClient:
        """An async `PrefectClient` for this backend (use as `async with`)."""
        from prefect.client.orchestration import PrefectClient

        self.ensure_started()
        return PrefectClient(self.api_url)

    def sync_client(self) -> SyncPrefectClient:
        """A `SyncPrefectClient` for this backend (use as `with`)."""
        from prefect.client.orchestration import SyncPrefectClient

        self.ensure_started()
        return SyncPrefectClient(self.api_url)

    def ensure_started(self) -> None:
        """Block until the backend answers (a no-op for backends that are always up)."""

    def check(self) -> None:
        """Raise `BackendError` naming the cause if the backend cannot serve (a no-op here)."""

    @contextlib.contextmanager
    def isolated_test(self, *, empty: bool = False) -> Iterator[None]:
        """One test's block: cached results it persisted are gone afterwards. `empty` (an API that
        holds nothing from earlier tests) needs a backend of the session's own."""
        if empty:
            from pytest_prefect_flows.exceptions import UsageError

            raise UsageError(
                f'isolation="test" empties the backend\'s database before the test, which only the '
                f"isolated backend (prefect_backend = ephemeral) allows; {self.api_url} is shared. "
                'Use isolation="session" here, or the ephemeral backend.'
            )
        try:
            yield
        finally:
            self._forget_results()

    def _forget_results(self) -> None:
        """Empty the local result storage, so a cached task of one test is not cached in the next."""
        if self._scope is None:
            return
        storage = Path(self._scope.settings.results.local_storage_path)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(storage):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)

    def flush_logs(self, timeout: float = 5.0) -> None:
        """Send the run logs Prefect's log worker still holds to the API (as `prefect_test_harness()`
        does before it stops its server); a no-op until Prefect's logging is loaded."""
        handlers = sys.modules.get("prefect.logging.handlers")
        if handlers is None:
            return
        with contextlib.suppress(Exception):  # a log that cannot be sent must not fail the session
            handlers.APILogWorker.drain_all(timeout=timeout)

    def close(self) -> None:
        if self._scope is not None:
            self._scope.exit()
            self._scope = None
        if self._env is not None:
            self._env.close()
            self._env = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            # An xdist controller closes last: it removes the dirs of workers that were killed.
            remove_stale_temp_dirs(self._base_dir)

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
