"""Every place where the plugin depends on how a particular Prefect version works.

The rest of the package calls these shims and never compares Prefect versions itself. Each shim
names the versions it serves and when it can go, so supporting a new Prefect release is a change to
this file alone (checked by `nox -s release -- 3.X.Y`, see docs/supported-versions.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.settings import Settings


@functools.cache
def prefect_version() -> str:
    # Cached: read once, while the metadata is findable (a pytester test's teardown restores
    # sys.path and sys.modules before the per-test cleanup that asks again).
    from importlib.metadata import version

    return version("prefect")


def settings_without_flow_heartbeat() -> Settings:
    """Settings from the current environment, with the flow-run heartbeat thread off.

    Prefect 3.5+: the heartbeat (joined for up to a second at the end of every flow) cannot be
    switched off through the environment, so it is set on the object. Prefect 3.4 has no flow
    heartbeat setting: nothing to switch off.
    """
    import prefect.settings
    from prefect.settings import Settings

    heartbeat: Any = getattr(prefect.settings, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)
    if heartbeat is None:
        return Settings()
    return Settings().copy_with_update(updates={heartbeat: None})


@contextlib.contextmanager
def events_client_override(client_type: Any, **client_kwargs: Any) -> Iterator[None]:
    """Make the engine's events worker use `client_type` (e.g. `NullEventsClient`) meanwhile.

    Prefect 3.6+: `EventsWorker.set_client_override`. Prefect 3.4 and 3.5 choose the client from
    the settings alone: `EventsWorker.instance()` is wrapped to ask for `client_type`. The wrapper can
    go when 3.5 leaves the supported range.
    """
    from prefect.events.worker import EventsWorker

    if hasattr(EventsWorker, "set_client_override"):
        previous = EventsWorker._client_override  # nested overrides (prefect_events) restore the outer one
        EventsWorker.set_client_override(client_type, **client_kwargs)
        try:
            yield
        finally:
            EventsWorker._client_override = previous
        return
    if client_kwargs:
        raise NotImplementedError("client options need Prefect 3.6+ (EventsWorker.set_client_override)")
    original = EventsWorker.__dict__["instance"]

    def instance(cls: Any, client_type_: Any = None) -> Any:
        return original.__func__(cls, client_type_ or client_type)

    EventsWorker.instance = classmethod(instance)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        EventsWorker.instance = original  # type: ignore[method-assign]


def emit_event_clock() -> tuple[Any, str, Any]:
    """Where `emit_event` reads the time it stamps on an event emitted without `occurred`.

    Prefect 3.4 to 3.9: `prefect.events.utilities.emit_event` calls `prefect.types._datetime.now("UTC")`,
    looked up on that module at each call. Returns the module, the attribute name and `emit_event`'s
    code object (to recognise its frame). Revisit when a Prefect release moves either function.
    """
    import prefect.events.utilities
    import prefect.types._datetime

    return prefect.types._datetime, "now", prefect.events.utilities.emit_event.__code__


def server_dependency_problem() -> str | None:
    """Why Prefect's server cannot serve Prefect's client in this environment, or None.

    Prefect 3.4 and 3.5: the client posts JSON bodies without a content type (`content=...`), and
    FastAPI 0.132+ rejects such bodies (strict content types), so the server answers 422 to every
    task run it is sent. Prefect 3.6 sends `json=`. This check can go when 3.5 leaves the range.
    """
    from importlib.metadata import version

    from packaging.version import Version

    prefect, fastapi = Version(version("prefect")), Version(version("fastapi"))
    if prefect < Version("3.6") and fastapi >= Version("0.132"):
        return (
            f"prefect {prefect} cannot talk to its own server with fastapi {fastapi}: its client sends "
            "JSON without a content type, which FastAPI 0.132 and later reject (HTTP 422). Install "
            "`fastapi<0.132` beside prefect 3.4 or 3.5, or upgrade prefect to 3.6 or later."
        )
    return None


DEFAULT_STORAGE_LOOKUPS = (
    "_read_server_default_result_storage_block_id",
    "_aread_server_default_result_storage_block_id",
)


def server_default_storage_lookups() -> tuple[Any, tuple[str, str]] | None:
    """Prefect's module and names of its sync/async "server default result storage" lookups.

    Prefect 3.7+ asks the API for the server's default result storage twice per flow run; the
    isolated backend answers from a cache (`backend.cleanup.cached_default_storage_lookup`). Prefect 3.4
    to 3.6 have no such lookup: None, and nothing is cached.
    """
    import prefect.results as results

    if not all(hasattr(results, name) for name in DEFAULT_STORAGE_LOOKUPS):
        return None
    return results, DEFAULT_STORAGE_LOOKUPS


def _prefect_deploy_module(name: str) -> Any:
    """`prefect.cli.deploy.<name>`, the code behind `prefect deploy` (Prefect 3.4 to 3.9).

    Importing it imports Prefect's CLI; when that fails, `prefect deploy` fails the same way, so the
    error says what is missing instead of showing Prefect's traceback.
    """
    import importlib

    from pytest_prefect_flows.exceptions import UsageError

    try:
        return importlib.import_module(f"prefect.cli.deploy.{name}")
    except ImportError as exc:
        raise UsageError(
            f"Prefect's `prefect deploy` code does not import here ({type(exc).__name__}: {exc}); "
            "`prefect deploy` would fail the same way. Install what is missing."
        ) from None


def deployment_config_fields() -> frozenset[str]:
    """The keys a `prefect.yaml` deployment entry may hold, from Prefect's own model.

    Prefect 3.4 (checked on 3.4.25) to 3.9: `DeploymentConfig` in `prefect.cli.deploy._models`.
    Goes when Prefect makes the model public.
    """
    DeploymentConfig = _prefect_deploy_module("_models").DeploymentConfig
    names = set(DeploymentConfig.model_fields)
    names.update(f.alias for f in DeploymentConfig.model_fields.values() if f.alias)
    return frozenset(names)


def validate_deployment_config(raw: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Errors of Prefect's `DeploymentConfig` model for one `prefect.yaml` entry, as (location, message).

    Prefect 3.4 to 3.9: the model lives in the private `prefect.cli.deploy._models`.
    """
    from pydantic import ValidationError

    DeploymentConfig = _prefect_deploy_module("_models").DeploymentConfig

    try:
        DeploymentConfig.model_validate(raw)
    except ValidationError as exc:
        return [(tuple(error["loc"]), str(error["msg"])) for error in exc.errors()]
    return []


def deployment_schedule_from_yaml(config: dict[str, Any]) -> Any:
    """The client schedule (`CronSchedule`, `IntervalSchedule`, `RRuleSchedule`) `prefect deploy` builds
    from one `schedules:` entry of `prefect.yaml`.

    Prefect 3.4 to 3.9: `_schedule_config_to_deployment_schedule` in `prefect.cli.deploy._schedules`.
    """
    build = _prefect_deploy_module("_schedules")._schedule_config_to_deployment_schedule
    return build(dict(config))["schedule"]


def flow_to_deployment(flow: Any, name: str) -> Any:
    """`flow.to_deployment(name=name)`, also for a flow whose file lies outside the current directory.

    Prefect 3.6+ (checked on 3.6.29 and 3.9.1) names such a file by a relative path with `..`.
    Prefect 3.4 (checked on 3.4.25; 3.5 unchecked) raises ValueError from `Path.relative_to`: there the
    deployment is built with a module-path entrypoint instead, which checks the same flow. The
    fallback can go when 3.5 leaves the supported range.
    """
    from pathlib import Path

    from prefect.types.entrypoint import EntrypointType

    try:
        return flow.to_deployment(name=name)
    except ValueError:
        file = getattr(flow.fn, "__globals__", {}).get("__file__")
        if not file or Path(file).absolute().is_relative_to(Path.cwd().absolute()):
            raise
        return flow.to_deployment(name=name, entrypoint_type=EntrypointType.MODULE_PATH)


def requested_retry_delay(task: Any, retries: int) -> float | None:
    """Seconds the task engine asks to wait before retrying a run of `task` retried `retries` times
    so far; None when it is drawn at random.

    Prefect 3.4 to 3.9 (checked on 3.4.25, 3.6.29, 3.9.1) schedule `AwaitingRetry` at "now" plus
    `retry_delay_seconds[min(retries, len - 1)]` (a list) or `retry_delay_seconds` (a number), then
    stamp the state with a second clock read. Prefect 3.9 draws a random delay around it for a task
    with a `retry_jitter_factor` (3.4 and 3.6 ignore the factor): None for such a task on every
    version, and the delay is read from the state's times instead.
    """
    from collections.abc import Sequence

    delays = getattr(task, "retry_delay_seconds", None)
    if not delays:
        return None
    delay = delays[min(retries, len(delays) - 1)] if isinstance(delays, Sequence) else delays
    if getattr(task, "retry_jitter_factor", None) and delay > 0:
        return None
    return float(delay)


def call_sync(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a Prefect function that is sync or async depending on its caller, and get its result.

    Prefect 3.5 to 3.9 (`async_dispatch`) and 3.4 (`sync_compatible`) both take `_sync=True` to run
    synchronously, even inside an async flow's worker thread.
    """
    return function(*args, _sync=True, **kwargs)


class _EventsTopicTap:
    """Stands in the memory broker's `events` topic as one more subscription, passing each message on."""

    def __init__(self, on_message: Callable[[bytes | str], None]) -> None:
        self._on_message = on_message

    async def deliver(self, message: Any) -> None:
        self._on_message(message.data)


def tap_server_events(on_message: Callable[[bytes | str], None]) -> Callable[[], None]:
    """Pass every event that the in-process API server publishes to `on_message` (JSON); returns the undo.

    Prefect 3.4 to 3.9: the server's orchestration emits flow-run state events through
    `PrefectServerEventsClient` onto the messaging broker's `events` topic, and the default broker
    (`prefect.server.utilities.messaging.memory`) delivers each message to every subscription of the
    topic in the server's own thread. `Topic.subscribe()` would build a queue that nothing reads, so
    the tap joins the subscriptions list itself. Goes when the memory broker offers a callback.
    """
    from prefect.server.utilities.messaging.memory import Topic

    topic = Topic.by_name("events")
    tap = _EventsTopicTap(on_message)
    topic._subscriptions.append(tap)  # type: ignore[arg-type]

    def undo() -> None:
        with contextlib.suppress(ValueError):
            topic._subscriptions.remove(tap)  # type: ignore[arg-type]

    return undo


def migrate_sqlite_synchronously(database: str | os.PathLike[str]) -> None:
    """Run every Alembic migration of Prefect's server on the SQLite file `database`, as
    `prefect server database upgrade` does, but through the synchronous `sqlite3` driver.

    Prefect's own `env.py` runs them through aiosqlite, where each of the ~34,000 statements
    (mostly reflection PRAGMAs of `batch_alter_table`) crosses a thread and the event loop: ~9 s of
    a cold start. The same migration scripts run here with the options of Prefect's `env.py`
    (`render_as_batch`, `transaction_per_migration`, foreign keys off while migrating) and the
    connection PRAGMAs of its SQLite configuration, in well under half that time.
    `tests/unit/test_template.py` proves the result equal to Prefect's own migration.

    Prefect 3.4 to 3.9: `alembic_commands.alembic_config()` and `orm.versions_dir` exist in all.
    """
    import sqlalchemy as sa
    from alembic.script import ScriptDirectory
    from prefect.server.database import provide_database_interface
    from prefect.server.database.alembic_commands import alembic_config

    db = provide_database_interface()
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    script.version_locations = [str(db.orm.versions_dir)]

    engine = sa.create_engine(f"sqlite:///{os.fspath(database)}", poolclass=sa.pool.NullPool)

    @sa.event.listens_for(engine, "connect")
    def _connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # as Prefect's aiosqlite setup: BEGIN is ours to emit
        cursor = connection.cursor()
        for pragma in (
            "journal_mode = WAL",
            "foreign_keys = ON",
            "legacy_alter_table = OFF",
            "synchronous = NORMAL",
            "cache_size = 20000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        _run_migrations(engine, config, script, db.Base.metadata)
    finally:
        engine.dispose()


def _run_migrations(engine: Any, config: Any, script: Any, metadata: Any) -> None:
    from alembic.runtime.environment import EnvironmentContext

    def upgrade(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", revision)

    # As Prefect's `alembic_upgrade`: batch operations reflect tables with expression indexes.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with (
            EnvironmentContext(config, script, fn=upgrade, destination_rev="head") as context,
            engine.connect() as connection,
        ):
            context.configure(
                connection=connection,
                target_metadata=metadata,
                include_schemas=True,
                render_as_batch=True,
                transaction_per_migration=True,
                template_args={"dialect": "sqlite"},
            )
            # Prefect's `env.py` `disable_sqlite_foreign_keys`, around the migrations.
            context.execute("COMMIT")
            context.execute("PRAGMA foreign_keys=OFF")
            context.execute("BEGIN IMMEDIATE")
            with context.begin_transaction():
                context.run_migrations()
            context.execute("END")
            context.execute("PRAGMA foreign_keys=ON")


def build_prefect_datetime_schemas_from_real_datetime() -> None:
    """Prefect's `DateTime` schema never sees freezegun's `FakeDatetime` (idempotent).

    Prefect 3.7+ on Python 3.13+ (the `whenever` branch of `prefect.types._datetime`): `_DateTime`
    builds its pydantic schema from `datetime.datetime` when a schema is first needed, and FastAPI
    builds a route's schemas on the route's first request. A first request made while a clock is
    frozen found `FakeDatetime` there, which pydantic cannot handle (HTTP 500 from the API). The
    handler Prefect calls is given the real class instead. Prefect 3.4 to 3.6 and other Pythons have no
    `_DateTime` hook: nothing to do.
    """
    import freezegun.api
    import prefect.types._datetime as prefect_datetime

    cls = getattr(prefect_datetime, "_DateTime", None)
    original = vars(cls).get("__get_pydantic_core_schema__") if cls is not None else None
    if original is None or getattr(original, "_real_datetime_handler", False):
        return
    fake, real = freezegun.api.FakeDatetime, freezegun.api.real_datetime

    def schema(klass: Any, source_type: Any, handler: Any) -> Any:
        return original.__func__(klass, source_type, _RealDatetimeHandler(handler, fake, real))

    schema._real_datetime_handler = True  # type: ignore[attr-defined]
    cls.__get_pydantic_core_schema__ = classmethod(schema)  # type: ignore[union-attr]


class _RealDatetimeHandler:
    """A pydantic schema handler that builds `real` wherever it is asked for `fake`."""

    def __init__(self, handler: Any, fake: type, real: type) -> None:
        self._handler, self._fake, self._real = handler, fake, real

    def __call__(self, source_type: Any) -> Any:
        return self._handler(self._real if source_type is self._fake else source_type)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler, name)


def template_inputs() -> list[Path]:
    """The files of the installed Prefect that decide what its template database holds: the
    SQLite migrations (tables, indexes, triggers, Alembic version) and the block types of its
    collections (block registration). A shipped template is used only if they are the ones it was
    built from.

    Prefect 3.4 to 3.9: `server/database/_migrations/versions/sqlite/*.py` and
    `server/collection_blocks_data.json`. Found without importing Prefect's server; a Prefect
    that moves them finds no inputs, and its template is built instead of shipped.
    """
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        return []
    server = Path(spec.origin).parent / "server"
    migrations = sorted((server / "database" / "_migrations" / "versions" / "sqlite").glob("*.py"))
    blocks = server / "collection_blocks_data.json"
    if not migrations or not blocks.is_file():
        return []
    return [*migrations, blocks]


def sqlite_configuration_without_fsync(connection_url: str) -> Any:
    """Prefect's server database configuration for `connection_url`, without fsync, and with the
    connection's calls run on the server's event loop.

    A test backend's database is thrown away at the end of the session: `PRAGMA synchronous = OFF`
    is set after Prefect's own pragmas (WAL journal, foreign keys, busy timeout, all kept), so the
    WAL checkpoints (about one every 15 flow runs, three `fdatasync` each) no longer wait for the
    disk. Each connection is then handed to `run_sqlite_calls_inline`, for which the URL asks the
    driver for connections any thread may use (`check_same_thread=false`). Prefect 3.4 to 3.9 set
    their pragmas in `AioSqliteConfiguration.setup_sqlite(conn, record)`, run on every new
    connection; the subclass extends it. Can go if Prefect lets the pragmas be configured.
    """
    from prefect.server.database.configurations import AioSqliteConfiguration

    class ThrowawaySqliteConfiguration(AioSqliteConfiguration):
        def setup_sqlite(self, conn: Any, record: Any) -> None:
            super().setup_sqlite(conn, record)
            cursor = conn.cursor()
            cursor.execute("PRAGMA synchronous = OFF;")
            cursor.close()
            run_sqlite_calls_inline(conn)

    separator = "&" if "?" in connection_url else "?"
    return ThrowawaySqliteConfiguration(connection_url=f"{connection_url}{separator}check_same_thread=false")


_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def run_sqlite_calls_inline(dbapi_connection: Any) -> bool:
    """Run a server connection's SQLite calls on the event loop instead of aiosqlite's thread.

    aiosqlite (0.17 to 0.22, read) sends every call (`execute`, `fetchall`, `commit`, ...) through
    `Connection._execute` to a worker thread and wakes the event loop with the result, 89 times
    in a 3-task flow run (counted): a 3-task flow took 62.1 ms with the hops and 47.8 ms without
    (`benchmarks/thread_hops.py --cut sqlite`, docs/performance.md). Against a test session's small
    database a call takes microseconds, so it runs where it is awaited. What waits stays in the
    worker thread: the connection's busy timeout is 0 on the loop, and a call SQLite refuses
    because another connection holds the write lock runs again in the thread with Prefect's busy
    timeout, as it would have without this. Only connections made with `check_same_thread=False` are changed;
    returns whether `dbapi_connection` (SQLAlchemy's aiosqlite adapter) was.
    """
    import sqlite3

    connection: Any = getattr(dbapi_connection, "_connection", None)  # the aiosqlite.Connection
    threaded = getattr(connection, "_execute", None)
    raw = getattr(connection, "_connection", None)  # its sqlite3.Connection
    if threaded is None or not isinstance(raw, sqlite3.Connection):
        return False
    try:
        (busy_timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
    except sqlite3.ProgrammingError:  # made for its own thread only: left as it is
        return False
    raw.execute("PRAGMA busy_timeout = 0")

    def waiting_for_the_lock(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raw.execute(f"PRAGMA busy_timeout = {int(busy_timeout)}")
        try:
            return fn(*args, **kwargs)
        finally:
            raw.execute("PRAGMA busy_timeout = 0")

    async def _execute(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not getattr(connection, "_running", True) or connection._connection is None:
            raise ValueError("Connection closed")  # as aiosqlite says it
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as error:
            code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
            busy = (
                (code & 0xFF) in (_SQLITE_BUSY, _SQLITE_LOCKED)
                if code is not None
                else "locked" in str(error)
            )
            if not busy:
                raise
        return await threaded(waiting_for_the_lock, fn, *args, **kwargs)

    connection._execute = _execute
    return True


# Set by the isolated backend's server for the requests it serves (`backend.server`).
SYNC_DEPENDENCIES_INLINE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "pytest_prefect_flows_sync_dependencies_inline", default=False
)


@functools.cache
def run_sync_dependencies_inline() -> bool:
    """Let FastAPI call a plain-function dependency directly in requests marked by a context variable.

    FastAPI (0.115 to 0.150, read) runs each dependency that is a plain function through
    `run_in_threadpool`, a hop to a worker thread and back: Prefect's API has five such
    dependencies (the database interface, the client's API and Prefect versions, `created_by`,
    worker lookups), eleven calls in a 3-task flow run, each returning at once. Where
    `SYNC_DEPENDENCIES_INLINE` is set (the isolated backend's own requests) they are called where
    they are awaited; every other FastAPI app in the process still gets the thread pool. Installed
    once per process; returns whether FastAPI had the function to wrap.
    """
    try:
        import fastapi.dependencies.utils as dependencies
    except ImportError:
        return False
    threaded = getattr(dependencies, "run_in_threadpool", None)
    if threaded is None:
        return False

    async def run_in_threadpool(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if SYNC_DEPENDENCIES_INLINE.get():
            return func(*args, **kwargs)
        return await threaded(func, *args, **kwargs)

    dependencies.run_in_threadpool = run_in_threadpool  # type: ignore[attr-defined]
    return True


def remove_default_content_type_middleware(app: Any) -> bool:
    """Take Prefect's `default_content_type` HTTP middleware out of `app`'s API; True if it was there.

    Prefect 3.6.19+ (present in 3.6.29, 3.7.8, 3.8.8 and 3.9.1; 3.4.25 and 3.5.0 have none) gives a
    POST/PUT/PATCH body without a Content-Type header `application/json`, for older clients, in an
    `@api_app.middleware("http")`:
    Starlette runs those through `BaseHTTPMiddleware` (a task group and memory streams per request,
    about 5% of a flow run's CPU). The caller does the same in plain ASGI
    (`backend.server.LoopbackRequests`). Must run before the app's first request, which builds its
    middleware stack. Can go if Prefect makes it plain ASGI.
    """
    api_app: Any = getattr(app, "api_app", None)
    middleware = getattr(api_app, "user_middleware", None)
    if not middleware:
        return False

    def is_default_content_type(entry: Any) -> bool:
        options = getattr(entry, "kwargs", None) or getattr(entry, "options", None) or {}
        return getattr(options.get("dispatch"), "__name__", "") == "default_content_type"

    kept = [entry for entry in middleware if not is_default_content_type(entry)]
    api_app.user_middleware = kept
    return len(kept) != len(middleware)


def forget_thread_at_exit(thread: threading.Thread) -> bool:
    """Interpreter exit no longer waits for `thread` (a stuck worker thread the plugin abandoned).

    Python 3.10-3.12 wait at exit for the `_tstate_lock` of each non-daemon thread listed in
    `threading._shutdown_locks`: taking it off the list is enough, and this returns True. Python
    3.13+ wait in C (`_thread._shutdown`) for every non-daemon thread, with no way to take one off:
    this returns False and the caller ends the process itself once the rest of the exit is done.
    Not about Prefect, but a version shim all the same; the 3.10-3.12 branch goes with Python 3.12.
    """
    shutdown_locks = getattr(threading, "_shutdown_locks", None)
    lock = getattr(thread, "_tstate_lock", None)
    if shutdown_locks is None or lock is None:
        return False
    with threading._shutdown_locks_lock:  # type: ignore[attr-defined]
        shutdown_locks.discard(lock)
    return True


@contextlib.contextmanager
def on_thread_pool_runner_exit(before: Callable[[Any, BaseException | None], None]) -> Iterator[None]:
    """While active, `before(runner, exception)` runs as a `ThreadPoolTaskRunner` is left, first.

    Prefect 3.x (read on 3.4.25 and 3.9.1) leaves the runner with `__exit__`, which shuts its
    executor down and waits for every worker: the plugin's hang guard must act before that wait.
    Goes when Prefect's runner offers a shutdown that does not wait.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    original = ThreadPoolTaskRunner.__dict__["__exit__"]

    def __exit__(self: Any, exc_type: Any, exc: Any, tb: Any) -> Any:
        before(self, exc)
        return original(self, exc_type, exc, tb)

    ThreadPoolTaskRunner.__exit__ = __exit__  # type: ignore[method-assign]
    try:
        yield
    finally:
        ThreadPoolTaskRunner.__exit__ = original  # type: ignore[method-assign]


def stop_thread_pool_runner(runner: Any) -> list[threading.Thread]:
    """Cancel a `ThreadPoolTaskRunner`'s queued work without waiting; return its worker threads.

    Prefect 3.x keeps the runner's `concurrent.futures.ThreadPoolExecutor` in `_executor` (None
    before the runner is entered); the executor keeps its threads in `_threads`.
    """
    executor = getattr(runner, "_executor", None)
    if executor is None:
        return []
    executor.shutdown(wait=False, cancel_futures=True)
    return list(getattr(executor, "_threads", ()))


def release_stuck_run_sync_loop(grace: float) -> threading.Thread | None:
    """Let Prefect start a new run-sync event loop if its current one is blocked; return its thread.

    Prefect 3.x (read on 3.9.1; other 3.x versions not checked) runs an async flow called from sync
    code on one shared daemon thread, `RunSyncEventLoopThread`
    (`prefect._internal.concurrency.threads._run_sync_loop`).
    A task that blocks that loop (`threading.Event().wait()` in an `async def` task) blocks every
    later sync-to-async call of the session. If the loop does not answer within `grace` seconds,
    this marks it shut down, which `get_run_sync_loop()` takes as its cue to start a fresh one; the
    blocked daemon thread is left behind (the interpreter's exit does not wait for daemon threads).
    Goes when Prefect stops sharing one loop thread, or a stuck loop can be replaced another way.
    """
    threads = _run_sync_loop_module()
    loop_thread = getattr(threads, "_run_sync_loop", None) if threads is not None else None
    loop = getattr(loop_thread, "_loop", None)
    if loop_thread is None or loop is None or not loop_thread.thread.is_alive() or not loop_thread.running:
        return None
    answered = threading.Event()
    try:
        loop.call_soon_threadsafe(answered.set)
    except RuntimeError:  # the loop is closed
        return None
    if answered.wait(grace):
        return None
    loop_thread.shutdown()
    return loop_thread.thread  # type: ignore[no-any-return]


def _run_sync_loop_module() -> Any:
    import sys

    return sys.modules.get("prefect._internal.concurrency.threads")
