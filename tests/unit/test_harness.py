"""The harness's building blocks, without starting a server: options, environment, temp dirs."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_prefect_flows.backend import (
    TEMP_PREFIX,
    IsolatedBackend,
    isolation_env,
    parse_backend,
    patched_environ,
    remove_stale_temp_dirs,
)
from pytest_prefect_flows.backend.server import LoopbackRequests, WriteCounter
from pytest_prefect_flows.backend.tempdirs import process_alive
from pytest_prefect_flows.exceptions import BackendError, UsageError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ephemeral", ("ephemeral", None)),
        (" server:http://127.0.0.1:4200 ", ("server", "http://127.0.0.1:4200/api")),
        ("server:http://127.0.0.1:4200/api/", ("server", "http://127.0.0.1:4200/api")),
    ],
)
def test_backend_values(value: str, expected: tuple[str, str | None]) -> None:
    assert parse_backend(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("bogus", r"prefect_backend = 'bogus' is not a backend\. Use `ephemeral`"),
        ("server:127.0.0.1:4200", r"server:'127\.0\.0\.1:4200' is not an http\(s\) URL; write e\.g\."),
    ],
)
def test_bad_backend_values_name_the_value_and_the_fix(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_backend(value)


def test_isolation_env_points_at_the_home_and_drops_credentials(tmp_path: Path) -> None:
    env = isolation_env(tmp_path, "http://127.0.0.1:1234/api", tmp_path / "prefect.db")
    assert env["PREFECT_API_KEY"] is None
    assert env["PREFECT_API_AUTH_STRING"] is None
    assert env["PREFECT_PROFILE"] is None
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:1234/api"
    assert env["PREFECT_HOME"] == str(tmp_path)
    assert env["PREFECT_PROFILES_PATH"] == str(tmp_path / "profiles.toml")
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}"
    assert env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] == "false"


def test_patched_environ_sets_removes_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PPF_KEEP", "user value")
    monkeypatch.delenv("PPF_NEW", raising=False)
    with patched_environ({"PPF_KEEP": None, "PPF_NEW": "set"}):
        assert "PPF_KEEP" not in os.environ
        assert os.environ["PPF_NEW"] == "set"
    assert os.environ["PPF_KEEP"] == "user value"
    assert "PPF_NEW" not in os.environ


def test_stale_temp_dirs_of_dead_and_zombie_processes_are_removed(tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    while finished.poll() is None:
        time.sleep(0.01)  # poll() reaped it: the pid is gone
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while process_alive(zombie.pid) and time.monotonic() < deadline:
        time.sleep(0.01)  # exited but not reaped: a zombie, like a killed xdist worker
    try:
        dirs = {
            name: tmp_path / f"{TEMP_PREFIX}{pid}-abc"
            for name, pid in [("dead", finished.pid), ("zombie", zombie.pid), ("alive", os.getpid())]
        }
        for path in dirs.values():
            path.mkdir()
        removed = remove_stale_temp_dirs(tmp_path)
    finally:
        zombie.wait()
    assert sorted(removed) == sorted([dirs["dead"], dirs["zombie"]])
    assert dirs["alive"].exists()


def test_backend_used_before_it_is_opened_says_how_to_open_it() -> None:
    with pytest.raises(BackendError, match=r"not open; use it as `with IsolatedBackend\(\):`"):
        IsolatedBackend().ensure_started()


@pytest.mark.parametrize(
    ("method", "path", "counted"),
    [
        ("POST", "/api/block_documents/", True),
        ("PATCH", "/api/variables/name/config", True),
        ("POST", "/api/v2/concurrency_limits/", True),
        ("DELETE", "/api/concurrency_limits/tag/db", True),
        ("PUT", "/api/admin/storage", True),
        ("GET", "/api/admin/storage", False),
        ("POST", "/api/block_documents/filter", False),
        ("POST", "/api/variables/count", False),
        ("GET", "/api/variables/name/config", False),
        ("POST", "/api/flow_runs/", False),
    ],
)
def test_requests_that_may_save_state_are_counted(method: str, path: str, counted: bool) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["path"])

    backend = IsolatedBackend()
    counter = WriteCounter(app, backend)
    asyncio.run(counter({"type": "http", "method": method, "path": path}, None, None))
    assert seen == [path]
    assert backend.writes == int(counted)


def test_server_logs_while_the_backend_stops_it_are_kept_off_the_console() -> None:
    """uvicorn's "Application shutdown failed" from the backend's own server thread, while the
    backend stops it, is kept in `shutdown_errors`; any other record passes."""
    backend = IsolatedBackend()
    logger = logging.getLogger("uvicorn.error")
    shown: list[str] = []
    handler = logging.Handler(level=logging.ERROR)
    handler.emit = lambda record: shown.append(record.getMessage())  # type: ignore[method-assign]
    logger.addFilter(backend._log_filter)
    logger.addHandler(handler)

    def server_logs(message: str) -> None:
        backend._server_thread = threading.Thread(target=logger.error, args=(message,))
        backend._server_thread.start()
        backend._server_thread.join()

    try:
        server_logs("serving failed")  # not stopping: shown
        backend._stopping = True
        server_logs("Application shutdown failed. Exiting.")
        logger.error("another thread")  # not the backend's server thread: shown
    finally:
        logger.removeFilter(backend._log_filter)
        logger.removeHandler(handler)
    assert shown == ["serving failed", "another thread"]
    assert backend.shutdown_errors == ["Application shutdown failed. Exiting."]


@pytest.mark.parametrize(
    ("method", "headers", "json_by_default", "expected"),
    [
        (
            "POST",
            [(b"content-length", b"2")],
            True,
            [(b"content-length", b"2"), (b"content-type", b"application/json")],
        ),
        ("POST", [(b"content-length", b"2")], False, [(b"content-length", b"2")]),
        (
            "POST",
            [(b"content-type", b"text/plain"), (b"content-length", b"2")],
            True,
            [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        ),
        ("POST", [(b"content-length", b"0")], True, [(b"content-length", b"0")]),
        ("GET", [(b"accept-encoding", b"gzip, deflate"), (b"accept", b"*/*")], True, [(b"accept", b"*/*")]),
    ],
)
def test_loopback_requests_ask_for_no_gzip_and_default_to_json(
    method: str,
    headers: list[tuple[bytes, bytes]],
    json_by_default: bool,
    expected: list[tuple[bytes, bytes]],
) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["headers"])

    wrapper = LoopbackRequests(app, json_by_default=json_by_default)
    asyncio.run(
        wrapper({"type": "http", "method": method, "path": "/api/flows/", "headers": headers}, None, None)
    )
    assert seen == [expected]
