"""The API server of the isolated backend: uvicorn serving Prefect's app from a thread.

What a request costs was measured with `benchmarks/profile_flow.py` (see docs/performance.md);
the server keeps every rule Prefect's API applies, and drops only work a loopback API of a test
session does not need: the disk flushes of a throwaway database, a thread hop per SQLite call and
per plain-function dependency (`_compat.run_sqlite_calls_inline`, `run_sync_dependencies_inline`),
gzip between two threads of one process, the access log nobody reads, and an HTTP middleware layer
whose job is done in plain ASGI.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows._compat import SYNC_DEPENDENCIES_INLINE

if TYPE_CHECKING:
    from pytest_prefect_flows.backend.isolated import IsolatedBackend

WRITE_PATHS = ("/block_documents", "/variables", "/concurrency_limits", "/admin/storage")
_READS = ("/filter", "/count", "/paginate")  # POSTs that only read


class ShutdownNoise(logging.Filter):
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


def make_server(backend: IsolatedBackend) -> Any:
    """A uvicorn server (not started) for Prefect's API on `backend`'s database."""
    import uvicorn
    from prefect.server.api.server import create_app
    from prefect.server.database.dependencies import set_database_config

    from pytest_prefect_flows._compat import (
        remove_default_content_type_middleware,
        run_sync_dependencies_inline,
        sqlite_configuration_without_fsync,
    )

    # Prefect caches the server's database configuration process-wide on first use; a second
    # backend in this process (pytester, a restart) must not write to the first one's file.
    set_database_config(sqlite_configuration_without_fsync(f"sqlite+aiosqlite:///{backend.database}"))
    app = create_app(settings=backend.settings, ephemeral=True, ignore_cache=True)
    json_by_default = remove_default_content_type_middleware(app)
    run_sync_dependencies_inline()
    config = uvicorn.Config(
        WriteCounter(
            OneWriterAtATime(KnownFlows(LoopbackRequests(app, json_by_default=json_by_default), backend)),
            backend,
        ),
        log_level="error",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


class LoopbackRequests:
    """ASGI wrapper for requests from this process: no gzip, JSON as the default body type, and
    Prefect's plain-function dependencies called without a thread hop.

    * `Accept-Encoding` is dropped: compressing a response for a client in the same process costs
      more than sending it; the response is the same JSON, uncompressed.
    * `json_by_default`: a POST, PUT or PATCH body without a Content-Type is JSON, as Prefect's own
      `default_content_type` middleware (removed from the app, see `_compat`) decides.
    * `_compat.SYNC_DEPENDENCIES_INLINE` is set for the request (see
      `_compat.run_sync_dependencies_inline`).
    """

    def __init__(self, app: Any, *, json_by_default: bool) -> None:
        self.app = app
        self.json_by_default = json_by_default

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(name, value) for name, value in scope["headers"] if name != b"accept-encoding"]
        if self.json_by_default and _body_without_type(scope["method"], headers):
            headers.append((b"content-type", b"application/json"))
        scope["headers"] = headers
        token = SYNC_DEPENDENCIES_INLINE.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            SYNC_DEPENDENCIES_INLINE.reset(token)


class OneWriterAtATime:
    """ASGI wrapper: requests that may write the database are handled one at a time.

    Prefect's API opens a write as a deferred SQLite transaction: it reads, then writes. When
    another request commits in between (run logs shipped by Prefect's log worker while a test's
    flow run is created), SQLite refuses the write at once with "database is locked" (the busy
    timeout does not apply to a stale read snapshot), the API answers 503, and Prefect's client
    sleeps about 2 s before it retries: 4 such sleeps in a 400-test session. Here a POST, PUT,
    PATCH or DELETE waits for the one before it to finish instead; reads run as before. Every
    request still goes through Prefect's API and its rules unchanged.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock: asyncio.Lock | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not _may_write(scope):
            await self.app(scope, receive, send)
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await self.app(scope, receive, send)


class KnownFlows:
    """ASGI wrapper: `POST /api/flows/` for a flow the API has already answered is answered again
    with the same body, without the database.

    Prefect's engine sends it before every flow run ("create the flow, or return the one of that
    name"), and for a flow that exists Prefect's API inserts nothing and returns the stored row
    unchanged, with status 200: the answer kept here is that row, for the same request body. It is
    forgotten when anything may have changed a flow: any other write under `/api/flows/` (update,
    delete), under `/api/admin/` (the database cleared), or a write the backend counts
    (`backend.writes`: the per-test cleanup and `isolation="test"` emptying the database).
    It saved 3 to 5 ms of a 3-task flow run's 50 to 75 ms (60 runs with it and 60 without,
    alternating in one process, on a shared 2-core VM).
    """

    def __init__(self, app: Any, backend: IsolatedBackend) -> None:
        self.app = app
        self.backend = backend
        self._answers: dict[bytes, tuple[list[tuple[bytes, bytes]], bytes]] = {}
        self._writes = backend.writes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not _may_write(scope):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self._writes != self.backend.writes:
            self._answers.clear()
            self._writes = self.backend.writes
        if scope["method"] == "POST" and path == "/api/flows/":
            await self._create_flow(scope, receive, send)
            return
        if path.startswith("/api/admin/") or (
            path.startswith("/api/flows/") and not path.rstrip("/").endswith(_READS)
        ):
            self._answers.clear()
        await self.app(scope, receive, send)

    async def _create_flow(self, scope: Any, receive: Any, send: Any) -> None:
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        answer = self._answers.get(body)
        if answer is not None:
            headers, content = answer
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": content})
            return
        started: dict[str, Any] = {}
        sent: list[bytes] = []
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                sent.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, capture)
        if started.get("status") in (200, 201) and self._writes == self.backend.writes:
            self._answers[body] = (list(started.get("headers", [])), b"".join(sent))


def _may_write(scope: Any) -> bool:
    """An HTTP request whose method may change what the API stores (not GET, HEAD or OPTIONS)."""
    return bool(scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"))


def _body_without_type(method: str, headers: list[tuple[bytes, bytes]]) -> bool:
    if method not in ("POST", "PUT", "PATCH"):
        return False
    names = dict(headers)
    return b"content-type" not in names and int(names.get(b"content-length", b"0")) > 0


class WriteCounter:
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
            and any(part in path for part in WRITE_PATHS)
            and not path.rstrip("/").endswith(("/filter", "/count"))
        ):
            self.backend.writes += 1
        await self.app(scope, receive, send)
