"""The version shims: each one works on the installed Prefect (the nox matrix runs every minor)."""

from __future__ import annotations

import importlib.metadata
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_prefect_flows import _compat


@pytest.mark.parametrize(
    ("prefect", "fastapi", "refused"),
    [("3.5.0", "0.150.0", True), ("3.4.25", "0.131.0", False), ("3.6.29", "0.150.0", False)],
)
def test_server_dependency_problem_names_the_pair_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, prefect: str, fastapi: str, refused: bool
) -> None:
    versions = {"prefect": prefect, "fastapi": fastapi}
    monkeypatch.setattr(importlib.metadata, "version", versions.__getitem__)

    problem = _compat.server_dependency_problem()

    if not refused:
        assert problem is None
        return
    assert problem is not None
    assert f"prefect {prefect}" in problem
    assert f"fastapi {fastapi}" in problem
    assert "`fastapi<0.132`" in problem


def test_the_installed_pair_can_serve() -> None:
    assert _compat.server_dependency_problem() is None


def test_settings_without_flow_heartbeat_switch_it_off_where_prefect_has_it() -> None:
    import prefect.settings

    settings = _compat.settings_without_flow_heartbeat()

    heartbeat = getattr(prefect.settings, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)
    if heartbeat is not None:
        assert heartbeat.value_from(settings) is None
    assert settings.api.url == prefect.settings.Settings().api.url


def test_events_client_override_picks_the_worker_client_and_restores_it() -> None:
    from prefect.events.clients import AssertingEventsClient, NullEventsClient
    from prefect.events.worker import EventsWorker

    outer = getattr(EventsWorker, "_client_override", None)  # the plugin's own, in a test
    with _compat.events_client_override(AssertingEventsClient):
        chosen = EventsWorker.instance()
        assert chosen.client_type is AssertingEventsClient
    with _compat.events_client_override(NullEventsClient):
        assert EventsWorker.instance().client_type is NullEventsClient
    assert "instance" in EventsWorker.__dict__
    assert getattr(EventsWorker, "_client_override", None) == outer
    EventsWorker.drain_all()


def test_requested_retry_delay_follows_the_task_settings() -> None:
    from prefect import task

    @task(retries=3, retry_delay_seconds=[5, 30])
    def listed() -> None: ...

    @task(retries=2, retry_delay_seconds=2.5)
    def fixed() -> None: ...

    @task(retries=2, retry_delay_seconds=[10], retry_jitter_factor=0.5)
    def jittered() -> None: ...

    @task(retries=2)
    def immediate() -> None: ...

    # The last listed delay repeats once the list runs out, as in the engine.
    assert [_compat.requested_retry_delay(listed, retries) for retries in range(3)] == [5.0, 30.0, 30.0]
    assert _compat.requested_retry_delay(fixed, 1) == 2.5
    assert _compat.requested_retry_delay(jittered, 0) is None  # random: read from the state instead
    assert _compat.requested_retry_delay(immediate, 0) is None


def test_the_server_database_keeps_prefect_pragmas_without_fsync(tmp_path: Path) -> None:
    configuration = _compat.sqlite_configuration_without_fsync(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    connection = sqlite3.connect(tmp_path / "x.db")
    configuration.setup_sqlite(connection, None)  # what the engine runs on every new connection
    pragmas = {
        name: connection.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "foreign_keys", "synchronous")
    }
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 0}


def _server_engine_scenario(database: Path, scenario: Any) -> Any:
    """Runs `scenario(connection, where)` on an engine of the server's database configuration."""
    import asyncio
    import threading

    configuration = _compat.sqlite_configuration_without_fsync(f"sqlite+aiosqlite:///{database}")

    async def main() -> Any:
        engine = await configuration.engine()
        try:
            async with engine.connect() as connection:
                raw = (await connection.get_raw_connection()).driver_connection
                # a SQL function that answers the name of the thread SQLite runs it in
                raw._conn.create_function("thread_name", 0, lambda: threading.current_thread().name)

                async def where() -> str:
                    result = await connection.exec_driver_sql("SELECT thread_name()")
                    return str(result.scalar())

                return await scenario(connection, where)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_server_database_calls_run_on_the_event_loop(tmp_path: Path) -> None:
    import threading

    async def scenario(connection: Any, where: Any) -> tuple[str, int]:
        busy_timeout = await connection.exec_driver_sql("PRAGMA busy_timeout")
        return await where(), busy_timeout.scalar()

    # aiosqlite would run it in its worker thread; the loop's own call never waits for a lock
    loop_thread = threading.current_thread().name  # asyncio.run's loop runs in this thread
    assert _server_engine_scenario(tmp_path / "x.db", scenario) == (loop_thread, 0)


def test_a_server_database_call_that_meets_a_lock_waits_for_it_in_a_thread(tmp_path: Path) -> None:
    import asyncio
    import threading

    database = tmp_path / "x.db"
    with sqlite3.connect(database) as setup:
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("CREATE TABLE numbers (x INTEGER)")
    holder = sqlite3.connect(database, check_same_thread=False, isolation_level=None)

    async def scenario(connection: Any, where: Any) -> tuple[int, int, str]:
        holder.execute("BEGIN IMMEDIATE")  # another connection holds the write lock for 0.5 s
        threading.Timer(0.5, holder.commit).start()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        ticker = asyncio.create_task(tick())
        await connection.exec_driver_sql("INSERT INTO numbers VALUES (1)")
        await connection.commit()
        ticker.cancel()
        count = await connection.exec_driver_sql("SELECT count(*) FROM numbers")
        busy_timeout = await connection.exec_driver_sql("PRAGMA busy_timeout")
        return count.scalar(), ticks, f"{await where()} {busy_timeout.scalar()}"

    rows, ticks, after = _server_engine_scenario(database, scenario)
    holder.close()

    assert rows == 1  # the insert waited for the lock, as with Prefect's busy timeout
    assert ticks >= 10  # and the event loop ran on meanwhile
    assert after == f"{threading.current_thread().name} 0"  # the next calls run on the loop again


def test_plain_function_dependencies_run_inline_only_in_requests_marked_for_it() -> None:
    import asyncio
    import threading

    import httpx
    from fastapi import Depends, FastAPI

    def thread_name() -> str:  # a plain function: FastAPI would send it to its thread pool
        return threading.current_thread().name

    app = FastAPI()

    @app.get("/where")
    async def where(name: str = Depends(thread_name)) -> str:
        return name

    async def ask(marked: bool) -> str:
        token = _compat.SYNC_DEPENDENCIES_INLINE.set(marked)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return str((await client.get("/where")).json())
        finally:
            _compat.SYNC_DEPENDENCIES_INLINE.reset(token)

    assert _compat.run_sync_dependencies_inline() is True

    async def both() -> tuple[str, str]:
        return await ask(True), await ask(False)

    marked, other = asyncio.run(both())
    loop_thread = threading.current_thread().name  # asyncio.run's loop runs in this thread
    assert marked == loop_thread  # the isolated backend's requests: called where it is awaited
    assert other != loop_thread  # any other FastAPI app: FastAPI's thread pool, as without the plugin


def test_default_content_type_middleware_is_removed_and_the_others_kept() -> None:
    from fastapi import FastAPI

    api_app = FastAPI()

    @api_app.middleware("http")
    async def default_content_type(request: Any, call_next: Any) -> Any:
        return await call_next(request)

    @api_app.middleware("http")
    async def other(request: Any, call_next: Any) -> Any:
        return await call_next(request)

    app = SimpleNamespace(api_app=api_app)
    assert _compat.remove_default_content_type_middleware(app) is True
    assert [entry.kwargs["dispatch"].__name__ for entry in api_app.user_middleware] == ["other"]
    assert _compat.remove_default_content_type_middleware(app) is False
