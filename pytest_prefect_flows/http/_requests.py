"""The `requests` side of `prefect_http`: a `responses` mock whose one response asks the respx router.

`responses` patches `requests`' `HTTPAdapter.send`, so every client built on `requests` goes
through it before any socket is opened (no DNS lookup). Its single registered response matches a
request when the router answers it (a route's response, or an exception to raise); the requests the
router lets through (the backend's API, `pass_through()` routes) do not match and go out through
the `responses` pass-through.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
from respx.models import PassThrough

if TYPE_CHECKING:
    from pytest_prefect_flows.http._router import PrefectHTTPRouter

_ANSWER = "_pytest_prefect_flows_answer"
_EVERY_URL = re.compile(".*")


class RequestsSide:
    """Starts and stops the `responses` mock for one router; a no-op without `requests` installed."""

    def __init__(self, router: PrefectHTTPRouter) -> None:
        self.router = router
        self._mock: Any = None

    def start(self) -> None:
        try:
            import requests  # noqa: F401
            import responses
        except ImportError:  # no `requests` here: nothing to mock on this side
            return
        if self._mock is not None:
            return
        mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        mock.add_passthru(_EVERY_URL)  # what the router lets through: it matched no response
        mock.add(_router_response(responses, self.router))
        mock.start()
        self._mock = mock

    def stop(self) -> None:
        if self._mock is not None:
            self._mock.stop(allow_assert=False)
            self._mock = None


def _router_response(responses: Any, router: PrefectHTTPRouter) -> Any:
    class RouterResponse(responses.CallbackResponse):  # type: ignore[misc]
        """Matches every request the router answers; its callback hands over that answer."""

        def __init__(self) -> None:
            super().__init__("ANY", _EVERY_URL, callback=_hand_over, content_type=None)

        def matches(self, request: Any) -> tuple[bool, str]:
            try:
                answer: Any = router.handler(_httpx_request(request))
            except PassThrough:
                return False, "passes through"
            except Exception as exc:
                answer = _requests_error(exc, request)
            setattr(request, _ANSWER, answer)
            return True, ""

    return RouterResponse()


def _hand_over(request: Any) -> Any:
    answer = request.__dict__.pop(_ANSWER)
    if isinstance(answer, BaseException):
        raise answer
    return _requests_parts(answer)


def _httpx_request(request: Any) -> httpx.Request:
    """A `requests.PreparedRequest` as the `httpx.Request` respx routes match."""
    body = request.body
    if body is None:
        content = b""
    elif isinstance(body, str):
        content = body.encode("utf-8")
    elif isinstance(body, bytes):
        content = body
    else:  # an iterable of chunks (a generator body)
        content = b"".join(chunk.encode("utf-8") if isinstance(chunk, str) else chunk for chunk in body)
    return httpx.Request(request.method, request.url, headers=list(request.headers.items()), content=content)


def _requests_parts(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body for `responses`; the body is already decoded, so the headers no
    longer say how it was encoded."""
    encoded = "content-encoding" in response.headers
    dropped = {"content-encoding", "content-length"} if encoded else set()
    headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in dropped]
    return response.status_code, headers, response.content


def _requests_error(exc: Exception, request: Any) -> Exception:
    """An httpx exception from a route's side effect as the `requests` exception that code expects;
    any other exception (the plugin's own, one of `requests`) as it is."""
    import requests

    if not isinstance(exc, httpx.HTTPError):
        return exc
    kinds: list[tuple[type[httpx.HTTPError], type[requests.RequestException]]] = [
        (httpx.ConnectTimeout, requests.ConnectTimeout),
        (httpx.ReadTimeout, requests.ReadTimeout),
        (httpx.TimeoutException, requests.Timeout),
        (httpx.ProxyError, requests.exceptions.ProxyError),
        (httpx.UnsupportedProtocol, requests.exceptions.InvalidSchema),
        (httpx.TransportError, requests.ConnectionError),
        (httpx.TooManyRedirects, requests.TooManyRedirects),
        (httpx.DecodingError, requests.exceptions.ContentDecodingError),
    ]
    kind = next((kind for source, kind in kinds if isinstance(exc, source)), requests.RequestException)
    converted = kind(str(exc), request=request)
    converted.__cause__ = exc
    return converted
