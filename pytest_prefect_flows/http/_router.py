"""`PrefectHTTPRouter`: a respx router that lets the Prefect backend's API through, names uncalled
routes, refuses unmocked requests, and answers `requests` too (`_requests.py`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import respx
from respx.models import AllMockedAssertionError, PassThrough

from pytest_prefect_flows.exceptions import UnmockedRequestError, UnusedRouteError
from pytest_prefect_flows.http._requests import RequestsSide

Origin = tuple[str, str, int | None]


def _origin(url: httpx.URL) -> Origin:
    return (url.scheme, url.host, url.port)


def _backend_origin() -> Origin | None:
    from prefect.settings import get_current_settings

    api_url = get_current_settings().api.url
    return _origin(httpx.URL(api_url)) if api_url else None


class PrefectHTTPRouter(respx.MockRouter):
    """A `respx.MockRouter` that lets the Prefect backend's traffic through and names uncalled routes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend_origin: Origin | None = None
        self.unmatched: list[httpx.Request] = []
        self._backend_route = respx.Route()
        self._refuses_retries = False
        self._requests = RequestsSide(self)

    def __enter__(self) -> PrefectHTTPRouter:
        super().__enter__()
        return self

    def start(self) -> None:
        self.backend_origin = _backend_origin()
        super().start()
        self._requests.start()
        if not self._refuses_retries:
            _NO_RETRY.add()
            self._refuses_retries = True

    def stop(self, clear: bool = True, reset: bool = True, quiet: bool = False) -> None:
        try:
            self._requests.stop()
            super().stop(clear=clear, reset=reset, quiet=quiet)
        finally:
            if self._refuses_retries:
                _NO_RETRY.remove()
                self._refuses_retries = False

    def _pass_backend(self, request: httpx.Request) -> None:
        if self.backend_origin is not None and _origin(request.url) == self.backend_origin:
            raise PassThrough(
                f"Prefect API request passes through: {request!r}",
                request=request,
                origin=self._backend_route,
            )

    def handler(self, request: httpx.Request) -> httpx.Response:
        """The response for a request (of httpx, or of `requests` converted); raises `PassThrough`
        for the backend's API and pass-through routes, `UnmockedRequestError` when no route matches."""
        self._pass_backend(request)
        try:
            return super().handler(request)
        except AllMockedAssertionError:
            raise self._unmocked(request) from None

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        self._pass_backend(request)
        try:
            return await super().async_handler(request)
        except AllMockedAssertionError:
            raise self._unmocked(request) from None

    def _unmocked(self, request: httpx.Request) -> UnmockedRequestError:
        self.unmatched.append(request)
        routes = [f"  {_describe(route)}" for route in self.routes] or ["  (none)"]
        method = request.method.lower()
        lines = [
            f"{request.method} {request.url} is not mocked: no prefect_http route matches it. Routes:",
            *routes,
            f'Add one, e.g. prefect_http.{method}("{request.url}").respond(200, json=...). '
            "A missing route is not an outage, so the task is not retried.",
        ]
        return UnmockedRequestError("\n".join(lines))

    def skip_assert_all_called(self) -> None:
        """Leave without checking that every route was called (the test failed for another reason)."""
        self._assert_all_called = False

    def assert_all_called(self) -> None:
        uncalled = [route for route in self.routes if not route.called]
        if uncalled:
            lines = [f"{len(uncalled)} mocked HTTP route(s) were never called:"]
            lines += [f"  {_describe(route)}" for route in uncalled]
            lines.append(f"Requests matched: {_requests(call.request for call in self.calls)}")
            lines.append(f"Requests no route matched: {_requests(self.unmatched)}")
            lines.append(
                "Check the URL and method, or opt out with @pytest.mark.prefect(assert_all_called=False) "
                "(mock_http(assert_all_called=False) outside pytest)."
            )
            raise UnusedRouteError("\n".join(lines))


def _caused_by_unmocked_request(exc_or_state: Any) -> bool:
    exc, seen = exc_or_state, set()
    while isinstance(exc, BaseException) and id(exc) not in seen:
        if isinstance(exc, UnmockedRequestError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def http_mocked() -> bool:
    """Whether a router is active in this process (the network guard's advice depends on it)."""
    return _NO_RETRY.active


class _NoRetryOnUnmocked:
    """Process-wide: while any router is active, a task that failed on an unmocked request is not retried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._restore: list[tuple[Any, Any]] = []

    @property
    def active(self) -> bool:
        return self._active > 0

    def add(self) -> None:
        with self._lock:
            if not self._active:
                self._install()
            self._active += 1

    def remove(self) -> None:
        with self._lock:
            self._active -= 1
            if not self._active:
                for engine, original in self._restore:
                    engine.can_retry = original
                self._restore = []

    def _install(self) -> None:
        from prefect.task_engine import AsyncTaskRunEngine, SyncTaskRunEngine

        for engine, wrap in ((SyncTaskRunEngine, _sync_can_retry), (AsyncTaskRunEngine, _async_can_retry)):
            original = engine.__dict__["can_retry"]
            self._restore.append((engine, original))
            engine.can_retry = wrap(original)  # type: ignore[method-assign]


def _sync_can_retry(original: Callable[..., bool]) -> Callable[..., bool]:
    def can_retry(engine: Any, exc_or_state: Any) -> bool:
        return not _caused_by_unmocked_request(exc_or_state) and original(engine, exc_or_state)

    return can_retry


def _async_can_retry(original: Callable[..., Any]) -> Callable[..., Any]:
    async def can_retry(engine: Any, exc_or_state: Any) -> bool:
        if _caused_by_unmocked_request(exc_or_state):
            return False
        return bool(await original(engine, exc_or_state))

    return can_retry


_NO_RETRY = _NoRetryOnUnmocked()


def _requests(requests: Iterable[httpx.Request]) -> str:
    distinct = sorted({f"{request.method} {request.url}" for request in requests})
    return ", ".join(distinct) if distinct else "(none)"


def _describe(route: respx.Route) -> str:
    pattern = repr(route.pattern)
    return f"{route.name!r}: {pattern}" if route.name else pattern


def mock_http(
    *, assert_all_called: bool = True, assert_all_mocked: bool = True, base_url: str | None = None
) -> PrefectHTTPRouter:
    """A respx router for outbound HTTP (a context manager); the Prefect backend's API passes through.

    `assert_all_mocked=True` refuses any request no route matches, so nothing leaves the machine by
    accident; `base_url` prefixes the routes' URLs as in respx.
    """
    return PrefectHTTPRouter(
        assert_all_called=assert_all_called, assert_all_mocked=assert_all_mocked, base_url=base_url
    )
