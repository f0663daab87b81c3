"""Mock a flow's outbound HTTP, from httpx and `requests` alike, while the Prefect backend's own API
traffic goes through.

Why not a plain `respx.mock`: the Prefect client talks to its API over httpx too, so a plain
`respx.mock` intercepts the engine's own calls (starting with `GET /api/csrf-token`) and every flow
run fails with "not mocked!" unless each backend call is routed through by hand. `mock_http()`
passes every request for the backend's origin (scheme, host and port of `PREFECT_API_URL`, read
from the active Prefect settings when it starts) to the real transport without recording it, so
`router.calls` holds only the flow's own requests, and anything else that is not mocked is refused.

The same routes answer `requests` (and every client built on it): a `responses` mock sends each
request to the router, converted to an `httpx.Request`; the route's response comes back as a
`requests` response, and an httpx exception of a `side_effect` as the matching `requests` one
(`httpx.ConnectError` -> `requests.ConnectionError`, timeouts -> `requests.Timeout`). Without
`requests` installed, only httpx is mocked. Works without pytest::

    with mock_http() as router:
        router.get("https://api.example.test/orders").respond(json=[{"id": 1}])
        my_flow()

Leaving it checks that every route was called and names the ones that were not
(`assert_all_called=False` to skip; `@pytest.mark.prefect(assert_all_called=False)` in pytest).
A request no route matches raises `UnmockedRequestError` naming it and the routes, before any DNS
lookup; while a router is active, the task engines' `can_retry` answers no for a task that failed
with it, so the mistake is reported once instead of once per retry (and no retry delay is spent on it).
"""

from __future__ import annotations

from pytest_prefect_flows.http._router import PrefectHTTPRouter, mock_http

__all__ = ["PrefectHTTPRouter", "mock_http"]
