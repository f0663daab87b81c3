"""The API server of the isolated backend: uvicorn serving Prefect's app from a thread."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_prefect_flows.backend.isolated import IsolatedBackend

WRITE_PATHS = ("/block_documents", "/variables", "/concurrency_limits", "/admin/storage")


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


class WriteCounter:
    """ASGI wrapper: counts requests that may save blocks, variables, concurrency limits or the
    server's default result storage (`backend.writes`)."""

    def __init__(self, app: Any, backend: IsolatedBackend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.backend.needed:
            self.backend.note_first_request()
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] != "GET"
            and any(part in path for part in WRITE_PATHS)
            and not path.rstrip("/").endswith(("/filter", "/count"))
        ):
            self.backend.writes += 1
        await self.app(scope, receive, send)
