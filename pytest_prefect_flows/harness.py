"""The isolated Prefect backend: temporary home, pre-migrated database, in-process API server.

`IsolatedBackend` works without pytest::

    with IsolatedBackend() as backend:
        my_flow()            # runs against backend.api_url, never the user's profile or server

Why it is fast (see docs/performance.md for the measurements):

* the database is a copy of a template migrated once per Prefect version, not a fresh migration;
* the API runs in a thread of this process (uvicorn on a loopback socket), not a subprocess, and is
  started only when the first client connects to the socket;
* server services (task-run recorder, event persister, scheduler, ...) are off, so nothing but the
  client writes to SQLite: no "database is locked", no 503 retries; task-run states are recorded on
  the client side (`pytest_prefect_flows.recording`);
* the flow-run heartbeat thread, joined for up to a second at the end of every flow, is off.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import logging
import os
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows._compat import prefect_version, server_dependency_problem
from pytest_prefect_flows.exceptions import BackendError, UsageError

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.context import SettingsContext
    from prefect.settings import Settings

TEMP_PREFIX = "pytest-prefect-flows-"

# How often the isolated API server is restarted after it stopped, before the backend gives up.
MAX_RESTARTS = 3

# What a test can save in the backend that the next test would see: table -> name column.
_TEST_OBJECTS = {
    "block_document": "name",
    "variable": "name",
    "concurrency_limit": "tag",
    "concurrency_limit_v2": "name",
}
_WRITE_PATHS = ("/block_documents", "/variables", "/concurrency_limits", "/admin/storage")


def default_template_dir() -> Path:
    """Per-user cache shared by every project and pytester run (the template is per Prefect version)."""
    override = os.environ.get("PYTEST_PREFECT_FLOWS_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-prefect-flows"


_SERVICES = (
    "CANCELLATION_CLEANUP",
    "EVENT_PERSISTER",
    "EVENT_LOGGER",
    "FOREMAN",
    "LATE_RUNS",
    "SCHEDULER",
    "PAUSE_EXPIRATIONS",
    "REPOSSESSOR",
    "CLEANUP_RECONCILER",
    "TASK_RUN_RECORDER",
    "TRIGGERS",
)

# Settings a user's environment may hold that would let a test reach a real server or profile.
_REMOVED_ENV = (
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_PROFILE",
    "PREFECT_API_DATABASE_CONNECTION_URL",
)


def isolation_env(home: Path, api_url: str, database: Path | None) -> dict[str, str | None]:
    """Environment that points Prefect at `home` and `api_url` only (`None` removes a variable)."""
    env: dict[str, str | None] = dict.fromkeys(_REMOVED_ENV)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
            "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
        }
    )
    ca_file = _small_ca_file(home)
    if ca_file is not None:
        env["PREFECT_API_SSL_CERT_FILE"] = str(ca_file)
    if database is not None:  # our own server
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{database}"
        # No CSRF on a loopback API of our own: the client would otherwise ask for a token (and get
        # a 422 "disabled") with every client it makes, i.e. every flow run.
        env["PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED"] = "false"
        env["PREFECT_CLIENT_CSRF_SUPPORT_ENABLED"] = "false"
    for service in _SERVICES:
        env[f"PREFECT_SERVER_SERVICES_{service}_ENABLED"] = "false"
    return env


def _small_ca_file(home: Path) -> Path | None:
    """A one-certificate CA file for the client's (unused) TLS context.

    Every flow run builds a client whose SSL context loads the whole certifi bundle (~25 ms),
    although the isolated API is plain HTTP on loopback. One certificate loads in microseconds.
    """
    try:
        import certifi
    except ImportError:
        return None
    bundle = Path(certifi.where()).read_text(encoding="ascii", errors="ignore")
    end = "-----END CERTIFICATE-----"
    if end not in bundle:
        return None
    start = bundle.index("-----BEGIN CERTIFICATE-----")
    path = home / "loopback-ca.pem"
    path.write_text(bundle[start : bundle.index(end) + len(end)] + "\n", encoding="ascii")
    return path


@contextlib.contextmanager
def patched_environ(updates: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for `None`, remove) environment variables and restore them afterwards."""
    saved = {name: os.environ.get(name) for name in updates}
    _apply_environ(updates)
    try:
        yield
    finally:
        _apply_environ(saved)


def _apply_environ(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def template_database(cache_dir: Path | None = None) -> Path:
    """Path of a migrated database for the installed Prefect version, built once and reused.

    Building runs the migrations (through the synchronous SQLite driver, see `_template`) and
    block registration in a subprocess (so nothing of the
    build's settings stays in this process) under a file lock (so xdist workers build it once).
    """
    cache_dir = Path(cache_dir or default_template_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    template = cache_dir / f"template-prefect-{prefect_version()}.db"
    if template.exists():
        return template
    with _file_lock(cache_dir / ".template.lock"):
        if not template.exists():
            _build_template(template)
    return template


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the atomic rename still keeps it safe
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_template(template: Path, how: str = "auto") -> None:
    """Build the template at `template`: `how` is a build of `_template.BUILDS`."""
    partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as home:
        env = {**os.environ}
        _apply_to(env, isolation_env(Path(home), "http://127.0.0.1:1/api", partial))
        result = subprocess.run(
            [sys.executable, "-m", "pytest_prefect_flows._template", how],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackendError(
            "Could not build the template Prefect database "
            f"(prefect {prefect_version()}):\n{result.stderr[-3000:]}\n"
            "Check that `prefect server` can start in this environment "
            "(e.g. `python -c 'import prefect.server.api.server'`)."
        )
    os.replace(partial, template)


def _apply_to(env: dict[str, str], values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value


def remove_stale_temp_dirs(base: Path | None = None) -> list[Path]:
    """Remove temp dirs left by sessions whose process is gone (SIGKILL, killed xdist worker)."""
    base = Path(base or tempfile.gettempdir())
    removed = []
    for path in base.glob(f"{TEMP_PREFIX}*-*"):
        pid_text = path.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed xdist worker stays a zombie until its parent reaps it; its temp dir is stale."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


class _SettingsScope:
    """Makes a Prefect `Settings` object current, in this context and process-wide."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context: SettingsContext | None = None
        self._previous_global: SettingsContext | None = None

    def enter(self) -> None:
        import prefect.context
        from prefect.context import SettingsContext

        profile = prefect.context.get_settings_context().profile
        self._context = SettingsContext(profile=profile, settings=self.settings)
        self._previous_global = prefect.context.GLOBAL_SETTINGS_CONTEXT
        prefect.context.GLOBAL_SETTINGS_CONTEXT = self._context
        self._context.__enter__()

    def exit(self) -> None:
        import prefect.context

        if self._context is None:
            return
        with contextlib.suppress(ValueError):  # token made in another context: nothing to reset
            self._context.__exit__(None, None, None)
        prefect.context.GLOBAL_SETTINGS_CONTEXT = self._previous_global  # type: ignore[assignment]
        self._context = None


def test_settings() -> Settings:
    """Settings built from the current (isolating) environment, with the flow heartbeat off."""
    from pytest_prefect_flows._compat import settings_without_flow_heartbeat

    return settings_without_flow_heartbeat()


class _Backend:
    """What both backends share: isolated home, environment and settings, client factories."""

    api_url: str
    kind: str = "backend"

    def __init__(self, base_dir: Path | None = None) -> None:
        self._base_dir = base_dir
        self.session_id = uuid.uuid4().hex[:12]
        self.home = Path()
        self._tmp: Path | None = None
        self._env: contextlib.ExitStack | None = None
        self._scope: _SettingsScope | None = None
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
                self._scope = _SettingsScope(test_settings())
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
    def isolated_test(self) -> Iterator[None]:
        """One test's block: cached results it persisted are gone afterwards."""
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

    def __enter__(self) -> _Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class IsolatedBackend(_Backend):
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
        self._template_dir = template_dir
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
        self._log_filter = _ShutdownNoise(self)
        self.shutdown_errors: list[str] = []  # what the server logged while it was being stopped
        self.restarts = 0
        # requests that may have saved blocks, variables, concurrency limits or the default storage
        self.writes = 0
        self.database = Path()

    def activate(self) -> None:
        with self._lock:
            first = self._scope is None
            super().activate()
            if first and self._env is not None:
                self._env.enter_context(_cached_default_storage_lookup(self))

    def __enter__(self) -> IsolatedBackend:
        remove_stale_temp_dirs(self._base_dir)
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
    def isolated_test(self) -> Iterator[None]:
        """One test's block: afterwards the blocks, variables, concurrency limits and cached
        results it saved are gone, so the next test does not see them.

        Costs one read of the SQLite file per test once the server runs; API calls only when the
        test sent a request that may have saved something.
        """
        before = self._saved_objects(self.database) if self.alive else None
        writes = self.writes
        try:
            yield
        finally:
            if self.writes != writes:
                self._remove_new_objects(before)
            self._forget_results()

    @staticmethod
    def _saved_objects(database: Path) -> dict[str, dict[str, str]]:
        """table -> {id: name} of what a test could have saved."""
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
            return {
                table: dict(connection.execute(f"SELECT id, {column} FROM {table}").fetchall())
                for table, column in _TEST_OBJECTS.items()
            }

    def _remove_new_objects(self, before: dict[str, dict[str, str]] | None) -> None:
        from prefect.exceptions import ObjectNotFound

        if before is None:  # the server started during the test: it began as the template
            before = self._saved_objects(template_database(self._template_dir))
        after = self._saved_objects(self.database)
        new = {table: set(after[table].items()) - set(before[table].items()) for table in after}
        if not any(new.values()):
            return
        with self.sync_client() as client:
            for table, rows in new.items():
                for id_, name in rows:
                    with contextlib.suppress(ObjectNotFound):  # gone with its parent
                        _delete(client, table, id_, name)

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
                with contextlib.suppress(BaseException):  # kept in self._failure
                    self._start_server()

    def ensure_started(self) -> None:
        if self._sock is None:
            raise BackendError(
                "The isolated Prefect backend is not open; use it as `with IsolatedBackend():`."
            )
        self._start_server()
        if not self._started.wait(self._startup_timeout):
            raise BackendError(
                f"The isolated Prefect backend did not start within {self._startup_timeout:.0f} s."
            )
        self._raise_failure()

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

    def _start_server(self) -> None:
        with self._lock:
            if self._server_thread is not None:
                return
            if self._failure is not None:
                self._raise_failure()
            try:
                problem = server_dependency_problem()
                if problem is not None:
                    raise BackendError(problem)
                self.activate()
                if not self.database.exists():  # a restart keeps the session's data
                    shutil.copyfile(self._template_while_importing_server(), self.database)
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

    def _template_while_importing_server(self) -> Path:
        """The template database; on a cold cache its build (a subprocess) runs while this process
        imports Prefect's server, which it needs next, instead of before it."""
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prefect-flows-template") as pool:
            template = pool.submit(template_database, self._template_dir)
            importlib.import_module("prefect.server.api.server")
            return template.result()

    def _make_server(self) -> Any:
        import uvicorn
        from prefect.server.api.server import create_app
        from prefect.server.database.configurations import AioSqliteConfiguration
        from prefect.server.database.dependencies import set_database_config

        # Prefect caches the server's database configuration process-wide on first use; a second
        # backend in this process (pytester, a restart) must not write to the first one's file.
        set_database_config(AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{self.database}"))
        app = create_app(settings=self.settings, ephemeral=True, ignore_cache=True)
        config = uvicorn.Config(
            _WriteCounter(app, self), log_level="error", lifespan="on", timeout_graceful_shutdown=2
        )
        return uvicorn.Server(config)

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


@contextlib.contextmanager
def _cached_default_storage_lookup(backend: IsolatedBackend) -> Iterator[None]:
    """Ask the backend for its default result storage once, not twice per flow run.

    Prefect's engine sends `GET /api/admin/storage` twice in every flow run. On a private server
    the answer changes only through a request the server sees (`PUT`/`DELETE /admin/storage`, a
    deleted block), all counted in `backend.writes`: the answer is kept until that count moves.
    Clients pointed at any other API (a test's own settings) still ask it. A no-op on a Prefect
    without this lookup (`_compat.server_default_storage_lookups`).
    """
    from prefect.settings import get_current_settings

    from pytest_prefect_flows._compat import server_default_storage_lookups

    lookups = server_default_storage_lookups()
    if lookups is None:
        yield
        return
    results, names = lookups
    read, aread = (getattr(results, name) for name in names)
    cached: dict[str, Any] = {}

    def ours() -> bool:
        return get_current_settings().api.url == backend.api_url

    def current() -> bool:
        return "value" in cached and cached["writes"] == backend.writes

    def read_cached() -> Any:
        if not ours():
            return read()
        if not current():
            writes = backend.writes  # before the request: a write meanwhile invalidates it
            cached.update(value=read(), writes=writes)
        return cached["value"]

    async def aread_cached() -> Any:
        if not ours():
            return await aread()
        if not current():
            writes = backend.writes
            cached.update(value=await aread(), writes=writes)
        return cached["value"]

    setattr(results, names[0], read_cached)
    setattr(results, names[1], aread_cached)
    try:
        yield
    finally:
        setattr(results, names[0], read)
        setattr(results, names[1], aread)


def _delete(client: SyncPrefectClient, table: str, id_: str, name: str) -> None:
    if table == "block_document":
        client.delete_block_document(uuid.UUID(id_))
    elif table == "variable":
        client.delete_variable_by_name(name)
    elif table == "concurrency_limit":
        client.delete_concurrency_limit_by_tag(name)
    else:
        client.delete_global_concurrency_limit_by_name(name)


class _ShutdownNoise(logging.Filter):
    """Keeps what uvicorn logs while the backend stops its server off the console.

    When the session ends, Prefect's background workers (docket on an in-memory redis) can fail
    while shutting down, and uvicorn prints the traceback and "Application shutdown failed": noise
    about a server that is being thrown away. The text is kept in `backend.shutdown_errors`.
    """

    def __init__(self, backend: IsolatedBackend) -> None:
        super().__init__()
        self.backend = backend

    def filter(self, record: logging.LogRecord) -> bool:
        backend = self.backend
        if not (backend._stopping and threading.current_thread() is backend._server_thread):
            return True
        backend.shutdown_errors.append(record.getMessage())
        return False


class _WriteCounter:
    """ASGI wrapper: counts requests that may save blocks, variables, concurrency limits or the
    server's default result storage (`backend.writes`)."""

    def __init__(self, app: Any, backend: IsolatedBackend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] != "GET"
            and any(part in path for part in _WRITE_PATHS)
            and not path.rstrip("/").endswith(("/filter", "/count"))
        ):
            self.backend.writes += 1
        await self.app(scope, receive, send)


class RemoteBackend(_Backend):
    """Runs flows against an existing Prefect server (`prefect_backend = server:<URL>`).

    Home and profile are still temporary; every run is tagged `pytest-prefect-flows:<session id>`
    (see `session_tag`) so tests only look at their own runs.
    """

    kind = "server"

    def __init__(self, url: str, *, base_dir: Path | None = None, timeout: float = 5.0) -> None:
        super().__init__(base_dir)
        self.api_url = normalise_api_url(url)
        self._timeout = timeout

    @property
    def session_tag(self) -> str:
        return f"pytest-prefect-flows:{self.session_id}"

    def __enter__(self) -> RemoteBackend:
        self.check_reachable()
        self._make_home()
        self._enter_environment()
        return self

    def check_reachable(self) -> None:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=self._timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BackendError(
                f"prefect_backend = server:{self.api_url} does not answer ({exc}). Start the server "
                "(`prefect server start`) or use the default `prefect_backend = ephemeral`."
            ) from None

    def __repr__(self) -> str:
        return f"<RemoteBackend {self.api_url} tag={self.session_tag}>"


def normalise_api_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(
            f"prefect_backend = server:{url!r} is not an http(s) URL; "
            "write e.g. `server:http://127.0.0.1:4200/api`."
        )
    return url if url.endswith("/api") else f"{url}/api"


def parse_backend(value: str) -> tuple[str, str | None]:
    """Validate a `prefect_backend` value: `ephemeral` or `server:<URL>`."""
    value = value.strip()
    if value == "ephemeral":
        return "ephemeral", None
    if value.startswith("server:"):
        return "server", normalise_api_url(value[len("server:") :])
    raise UsageError(
        f"prefect_backend = {value!r} is not a backend. Use `ephemeral` (default: an isolated "
        "local backend) or `server:<URL>` (an existing Prefect server, e.g. server:http://127.0.0.1:4200/api)."
    )


def make_backend(value: str, **kwargs: Any) -> IsolatedBackend | RemoteBackend:
    kind, url = parse_backend(value)
    if kind == "server":
        assert url is not None
        return RemoteBackend(url, base_dir=kwargs.get("base_dir"))
    return IsolatedBackend(**kwargs)
