"""The isolated Prefect backend: temporary home, pre-migrated database, in-process API server.

`IsolatedBackend` works without pytest::

    with IsolatedBackend() as backend:
        my_flow()            # runs against backend.api_url, never the user's profile or server

Why it is fast (see docs/performance.md for the measurements):

* the database is a copy of a template migrated once per Prefect version, not a fresh migration;
* the API runs in a thread of this process (uvicorn on a loopback socket), not a subprocess, and is
  started only when the first client connects to the socket; what takes long in that start (the
  import of Prefect's server, the template) can be done ahead by `prepare_ahead()`, which the
  pytest plugin calls while it collects, once a collected test module holds a flow;
* server services (task-run recorder, event persister, scheduler, ...) are off, so nothing but the
  client writes to SQLite: no "database is locked", no 503 retries; task-run states are recorded on
  the client side (`pytest_prefect_flows.recording`);
* the flow-run heartbeat thread, joined for up to a second at the end of every flow, is off.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import functools
import gc
import importlib
import logging
import os
import select
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_prefect_flows._compat import server_dependency_problem
from pytest_prefect_flows.backend.base import Backend
from pytest_prefect_flows.backend.cleanup import (
    cached_default_storage_lookup,
    empty_database,
    remove_new_objects,
    saved_objects,
)
from pytest_prefect_flows.backend.environment import isolation_env
from pytest_prefect_flows.backend.server import ShutdownNoise, make_server
from pytest_prefect_flows.backend.tempdirs import remove_stale_partials, remove_stale_temp_dirs
from pytest_prefect_flows.backend.template import default_template_dir, template_database
from pytest_prefect_flows.exceptions import BackendError

# How often the isolated API server is restarted after it stopped, before the backend gives up.
MAX_RESTARTS = 3


class IsolatedBackend(Backend):
    """A private Prefect API on a loopback port, backed by a copy of a pre-migrated SQLite DB.

    Args:
        template_dir: where the template database is cached (per Prefect version).
        base_dir: where the session's temporary directory is made (default: the system temp dir).
        lazy: start the server on the first connection to its socket (default) instead of now.
        startup_timeout: seconds to wait for the server to answer.
    """

    kind = "ephemeral"

    def __init__(
        self,
        *,
        template_dir: Path | None = None,
        base_dir: Path | None = None,
        lazy: bool = True,
        startup_timeout: float = 60.0,
    ) -> None:
        super().__init__(base_dir)
        self.template_dir = template_dir
        self._lazy = lazy
        self._startup_timeout = startup_timeout
        self._sock: socket.socket | None = None
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._closing = False
        self._stopping = False  # the backend itself is stopping the API server
        self._log_filter = ShutdownNoise(self)
        self.shutdown_errors: list[str] = []  # what the server logged while it was being stopped
        self.restarts = 0
        # requests that may have saved blocks, variables, concurrency limits or the default storage
        self.writes = 0
        self.database = Path()
        # The slow, context-free part of a start (imports, template), done once: its result or error.
        self._prepare_lock = threading.Lock()
        self._prepared: Path | BaseException | None = None
        self.prepared_ahead = False  # whether `prepare_ahead()` ran
        self._need_lock = threading.Lock()
        self._needed = False
        # How long the first client that needed the server waited for it (None: none needed it yet).
        self.first_wait_seconds: float | None = None

    def activate(self) -> None:
        with self._lock:
            first = self._scope is None
            super().activate()
            if first and self._env is not None:
                self._env.enter_context(cached_default_storage_lookup(self))

    def __enter__(self) -> IsolatedBackend:
        remove_stale_temp_dirs(self._base_dir)
        remove_stale_partials(self.template_dir or default_template_dir())
        self._make_home()
        assert self._tmp is not None
        self.database = self._tmp / "prefect.db"
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto
        # says TCP, and without it every response waits ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.api_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/api"
        self._enter_environment()
        if self._lazy:
            self._wake_r, self._wake_w = os.pipe()
            self._arm_watcher()
        else:
            self.ensure_started()
        return self

    def _environment(self) -> dict[str, str | None]:
        return isolation_env(self.home, self.api_url, self.database)

    @contextlib.contextmanager
    def isolated_test(self, *, empty: bool = False) -> Iterator[None]:
        """One test's block: afterwards the blocks, variables, concurrency limits and cached
        results it saved are gone, so the next test does not see them.

        Costs one read of the SQLite file per test once the server runs; API calls only when the
        test sent a request that may have saved something. With `empty`, the API holds nothing
        from earlier tests when the block starts (`isolation="test"`): no flow runs, deployments,
        blocks, variables, artifacts, concurrency limits, work pools, ...; the server keeps running.
        """
        if empty:
            self.empty()
        before = saved_objects(self.database) if self.alive else None
        writes = self.writes
        try:
            yield
        finally:
            if self.writes != writes:
                remove_new_objects(self, before)
            self._forget_results()

    def empty(self) -> None:
        """Delete every row an API client could have made (see `empty_database`); the server runs on.

        Counted as a write: what the server's wrappers keep from earlier answers (a flow's row, the
        default storage's block) is asked for again.
        """
        if self.database.is_file():
            empty_database(self.database, template_database(self.template_dir))
            self.writes += 1

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def _arm_watcher(self) -> None:
        self._watcher = threading.Thread(
            target=self._start_on_first_connection, name="prefect-flows-watcher", daemon=True
        )
        self._watcher.start()

    def _start_on_first_connection(self) -> None:
        sock = self._sock
        if sock is None:
            return
        sources: list[Any] = [sock, self._wake_r]
        with contextlib.suppress(OSError, ValueError):  # the socket was closed meanwhile
            readable, _, _ = select.select(sources, [], [])
            if sock in readable and not self._closing:
                with self._first_need(), contextlib.suppress(BaseException):  # kept in self._failure
                    self._start_server()
                    self._started.wait(self._startup_timeout)

    def ensure_started(self) -> None:
        if self._sock is None:
            raise BackendError(
                "The isolated Prefect backend is not open; use it as `with IsolatedBackend():`."
            )
        with self._first_need():
            self._start_server()
            if not self._started.wait(self._startup_timeout):
                raise BackendError(
                    f"The isolated Prefect backend did not start within {self._startup_timeout:.0f} s."
                )
        self._raise_failure()

    @contextlib.contextmanager
    def _first_need(self) -> Iterator[None]:
        """Time the first wait of a client for the server (`first_wait_seconds`); later ones pass."""
        with self._need_lock:
            first, self._needed = not self._needed, True
        begin = time.perf_counter()
        try:
            yield
        finally:
            if first:
                self.first_wait_seconds = time.perf_counter() - begin

    def prepare_ahead(self) -> None:
        """Do now, in this thread, what takes long in a start and depends on no settings: import
        Prefect's server and find (or build) the template database.

        The server itself still starts when the first client connects, so the first flow waits
        only for the app to be built and to answer. A failure is kept, and raised when a client
        needs the server, as without this call. It runs in the caller's thread on purpose: an
        import in another thread while the session imports test modules can meet a partially
        initialised package (`ImportError ... most likely due to a circular import`), and
        freezegun, which scans every module when it starts, a module dict that changes under it.
        """
        with self._lock:
            if self._sock is None or self._closing or self._server_thread is not None:
                return
            if self._failure is not None:
                return
        self.prepared_ahead = True
        with contextlib.suppress(Exception):  # kept in self._prepared, raised again on need
            self._prepare()

    def _raise_failure(self) -> None:
        if isinstance(self._failure, BackendError):
            raise self._failure
        if self._failure is not None:
            raise BackendError(
                f"The isolated Prefect backend failed to start: {self._failure!r}. "
                "Run with `-p no:prefect_flows` to compare with plain Prefect."
            ) from self._failure

    def check(self) -> None:
        """Raise `BackendError` naming the cause if the backend failed and will not serve again."""
        self._raise_failure()

    def _prepare(self) -> Path:
        """Import Prefect's server and find the template database, once; the template's path.

        Outside `self._lock`, which the server thread's start and stop take.
        """
        with self._prepare_lock:
            if self._prepared is None:
                try:
                    problem = server_dependency_problem()
                    if problem is not None:
                        raise BackendError(problem)
                    self._prepared = self._template_while_importing_server()
                except BaseException as exc:
                    self._prepared = exc
            if isinstance(self._prepared, BaseException):
                raise self._prepared
            return self._prepared

    def _start_server(self) -> None:
        """Start the server thread (a no-op if it runs or the backend closes)."""
        if not self._may_start():
            return
        try:
            template = self._prepare()
        except BaseException as exc:
            with self._lock:
                if self._failure is None:
                    self._give_up(exc)
            raise
        with self._lock:
            if not self._may_start():
                return
            try:
                self.activate()
                if not self.database.exists():  # a restart keeps the session's data
                    shutil.copyfile(template, self.database)
                self._server = self._make_server()
            except BaseException as exc:
                self._give_up(exc)
                raise
            self._stopping = False
            logging.getLogger("uvicorn.error").addFilter(self._log_filter)
            self._server_thread = threading.Thread(
                target=self._serve, name="prefect-flows-server", daemon=True
            )
            self._server_thread.start()
            skip_final_collection_at_exit()

    def _may_start(self) -> bool:
        """Whether a start is due: not if the server runs or the backend closes; raises the failure
        that made the backend give up."""
        with self._lock:
            if self._server_thread is not None or self._closing:
                return False
            self._raise_failure()
            return True

    def _template_while_importing_server(self) -> Path:
        """The template database; on a cold cache its build (a subprocess) runs while this process
        imports Prefect's server, which it needs next, instead of before it."""
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prefect-flows-template") as pool:
            template = pool.submit(template_database, self.template_dir)
            importlib.import_module("prefect.server.api.server")
            importlib.import_module("uvicorn")
            leave_imported_objects_out_of_collections()
            return template.result()

    def _make_server(self) -> Any:
        return make_server(self)

    def _serve(self) -> None:
        from prefect.context import SettingsContext

        assert self._scope is not None
        assert self._sock is not None
        watcher = threading.Thread(target=self._mark_started, daemon=True)
        watcher.start()
        stopped_by: BaseException | None = None
        try:
            with SettingsContext(profile=self._scope_profile(), settings=self.settings):
                # uvicorn closes the sockets it serves: give it a duplicate, so the port stays ours
                # and a restart can serve it again.
                self._server.run(sockets=[self._sock.dup()])
        except BaseException as exc:  # the server thread must never die silently
            stopped_by = exc
        finally:
            self._started.set()
            self._after_server_exit(stopped_by)

    def _after_server_exit(self, cause: BaseException | None) -> None:
        """The server stopped while the backend is open: serve again on the next connection.

        After `MAX_RESTARTS` the backend gives up: the port is closed, so clients fail at once
        instead of waiting for an answer, and `check()` names the cause.
        """
        with self._lock:
            if self._closing or self._sock is None:
                return
            self.restarts += 1
            self._server_thread = None
            if self.restarts > MAX_RESTARTS or not self._lazy:
                self._give_up(
                    BackendError(
                        f"The isolated Prefect backend stopped {self.restarts} times "
                        f"(last: {'stopped' if cause is None else repr(cause)}); not restarting it. "
                        "Look for a test that stops or breaks the API server."
                    )
                )
                return
            self._started.clear()
            self._arm_watcher()

    def _give_up(self, failure: BaseException) -> None:
        """Refuse connections from now on, so clients fail fast instead of waiting."""
        self._failure = failure
        self._started.set()
        if self._sock is not None:
            self._sock.close()

    def _scope_profile(self) -> Any:
        import prefect.context

        return prefect.context.get_settings_context().profile

    def _mark_started(self) -> None:
        while not (self._server.started or self._failure is not None):
            if self._server_thread is not None and not self._server_thread.is_alive():
                break
            time.sleep(0.005)
        self._started.set()

    @property
    def alive(self) -> bool:
        """Whether the server thread is running (False before the first start)."""
        return self._server_thread is not None and self._server_thread.is_alive()

    def stop_server(self) -> None:
        """Stop the API server; the backend stays open (used to simulate the backend dying)."""
        if self._server is not None:
            self._stopping = True
            self._server.should_exit = True
        if self._server_thread is not None:
            self._server_thread.join(timeout=10)

    def close(self) -> None:
        if self.alive:
            self.flush_logs()
        with self._lock:
            self._closing = True
        if self._wake_w != -1:
            os.write(self._wake_w, b"x")
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        self.stop_server()
        for fd in (self._wake_r, self._wake_w):
            if fd != -1:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        logging.getLogger("uvicorn.error").removeFilter(self._log_filter)
        super().close()

    def __repr__(self) -> str:
        state = "running" if self.alive else "idle"
        return f"<IsolatedBackend {self.api_url} {state} home={self.home}>"


def leave_imported_objects_out_of_collections() -> None:
    """Move every object alive now (Prefect, its server's ORM, schemas and routes: about a million,
    imported once for the session) out of the garbage collector's generations (`gc.freeze()`).

    A full collection walked them all each time: about 0.3 s, a few times a session and twice more
    in pytest's own last collections. Objects created later are collected as before; one alive now
    that later becomes garbage in a reference cycle stays in memory (docs/fixtures.md says so).
    """
    gc.freeze()


@functools.cache
def skip_final_collection_at_exit() -> None:
    """At interpreter exit, once pytest is done, leave the objects alive then out of the final
    garbage collections (`gc.freeze()`): a process that served Prefect's API holds about a million
    objects (its server's ORM, schemas and routes), and collecting them only to free memory the
    process hands back anyway made it exit about 0.8 s later, in every session and every xdist
    worker. Registered once per process, when a server first starts; everything pytest reports,
    pytest's own last collections included (unraisable exceptions), runs before it.
    """
    atexit.register(gc.freeze)
