"""`EventLog` filters and the event assertions over hand-made events, without a server."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx
import pytest
from prefect.events import Event

from pytest_prefect_flows import EventLog, UsageError, assert_event_emitted, assert_no_event

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
FLOW_RUN = uuid.uuid4()


def event(name: str, resource: dict[str, str], seconds: float = 0, **payload: object) -> Event:
    related = [{"prefect.resource.id": f"prefect.flow-run.{FLOW_RUN}", "prefect.resource.role": "flow-run"}]
    return Event(
        event=name,
        resource=resource,
        related=related if not resource["prefect.resource.id"].startswith("prefect.") else [],
        payload=payload,
        occurred=T0 + dt.timedelta(seconds=seconds),
    )


LOG = EventLog(
    [
        event("prefect.flow-run.Running", {"prefect.resource.id": f"prefect.flow-run.{FLOW_RUN}"}),
        event(
            "orders.loaded", {"prefect.resource.id": "orders.eu", "region": "eu"}, 1, rows=3, meta={"a": 1}
        ),
        event("orders.loaded", {"prefect.resource.id": "orders.us", "region": "us"}, 2, rows=5),
        event("prefect.flow-run.Completed", {"prefect.resource.id": "prefect.flow-run.other"}, 3),
    ],
    "test",
)


def test_filters() -> None:
    assert LOG.named("prefect.flow-run.*").names == ["prefect.flow-run.Running", "prefect.flow-run.Completed"]
    assert [e.resource["region"] for e in LOG.about({"region": "u*"})] == ["us"]
    assert LOG.for_run(FLOW_RUN).names == ["prefect.flow-run.Running", "orders.loaded", "orders.loaded"]
    assert len(LOG.for_run(str(FLOW_RUN)).named("orders.*")) == 2
    assert (
        "+   2.000s  orders.loaded" in LOG.timeline().replace("+ ", "+").replace("+", "+   ", 1)
        or LOG.timeline()
    )


def test_payload_is_matched_as_a_subset_recursively() -> None:
    [match] = assert_event_emitted(LOG, "orders.*", payload={"meta": {"a": 1}})
    assert match.resource["region"] == "eu"
    with pytest.raises(AssertionError, match=r"payload\['meta'\]\['a'\] is 1, expected 2"):
        assert_event_emitted(LOG, "orders.loaded", payload={"meta": {"a": 2}})


def test_count_and_no_event() -> None:
    assert_event_emitted(LOG, "orders.loaded", count=2)
    with pytest.raises(AssertionError, match="exactly 1 time\nobserved: 2 matching events"):
        assert_event_emitted(LOG, "orders.loaded", count=1)
    assert_no_event(LOG, "orders.loaded", resource={"region": "asia"})
    with pytest.raises(
        AssertionError, match=re.escape("expected no event 'orders.loaded' with resource {'region': 'us'}")
    ):
        assert_no_event(LOG, "orders.loaded", resource={"region": "us"})


def test_nothing_recorded_says_how_to_record() -> None:
    with pytest.raises(
        AssertionError, match=r"no events were recorded\.\nMore: .*request the prefect_events fixture"
    ):
        assert_event_emitted([], "orders.loaded")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: assert_event_emitted(LOG, ""), "takes the event name as text"),
        (lambda: assert_event_emitted(LOG, "x", resource="eu"), r"resource=\.\.\.\) takes a dict"),
        (lambda: assert_event_emitted(LOG, "x", payload=[1]), r"payload=\.\.\.\) takes a dict"),
        (lambda: assert_event_emitted(LOG, "x", count=-1), "count=...\\) takes a number"),
        (lambda: LOG.for_run(None), "for_run\\(\\) takes a flow run"),
        (lambda: assert_no_event({"a": 1}, "x"), "takes the prefect_events fixture"),
    ],
)
def test_bad_input(call: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call()  # type: ignore[operator]


def test_server_backend_reads_flow_run_events_by_session_tag_page_by_page() -> None:
    import json

    import respx
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pytest_prefect_flows.events import EventRecorder

    api = "http://127.0.0.1:9/api"
    flow_run = {"prefect.resource.id": "prefect.flow-run.x"}
    stored = [
        {**event(f"prefect.flow-run.{name}", flow_run).model_dump(mode="json"), "received": T0.isoformat()}
        for name in ("Running", "Completed")
    ]
    recorder = EventRecorder(session_tag="pytest-prefect-flows:abc")
    recorder._started = T0
    with temporary_settings({PREFECT_API_URL: api}), respx.mock(assert_all_called=True) as router:
        router.get(f"{api}/admin/settings").respond(
            json={"server": {"services": {"event_persister": {"enabled": False}}}}
        )
        first = router.post(f"{api}/events/filter").respond(
            json={"events": stored[:1], "total": 2, "next_page": f"{api}/events/filter/next?page-token=2"}
        )
        router.get(f"{api}/events/filter/next").respond(
            json={"events": stored[1:], "total": 2, "next_page": None}
        )
        found = recorder._remote_flow_run_events()
    assert [e.event for e in found] == ["prefect.flow-run.Running", "prefect.flow-run.Completed"]
    sent = json.loads(first.calls.last.request.content)
    assert sent["filter"]["related"]["resources_in_roles"] == [
        ["prefect.tag.pytest-prefect-flows:abc", "tag"]
    ]
    assert sent["filter"]["event"]["prefix"] == ["prefect.flow-run."]


def test_server_backend_waits_until_the_event_persister_stored_every_state_of_the_runs() -> None:
    import respx
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pytest_prefect_flows.events import EventRecorder

    api = "http://127.0.0.1:9/api"
    flow_run = {"prefect.resource.id": "prefect.flow-run.x"}
    stored = [
        {**event(f"prefect.flow-run.{name}", flow_run).model_dump(mode="json"), "received": T0.isoformat()}
        for name in ("Pending", "Running", "Completed")
    ]
    recorder = EventRecorder(session_tag="pytest-prefect-flows:abc")
    recorder._started = T0
    with temporary_settings({PREFECT_API_URL: api}), respx.mock(assert_all_called=True) as router:
        router.get(f"{api}/admin/settings").respond(
            json={"server": {"services": {"event_persister": {"enabled": True, "flush_interval": 0.2}}}}
        )
        reads = router.post(f"{api}/events/filter")
        reads.side_effect = [  # the persister stores the last state one flush later
            httpx.Response(200, json={"events": stored[:2], "next_page": None}),
            httpx.Response(200, json={"events": stored[:2], "next_page": None}),
            httpx.Response(200, json={"events": stored, "next_page": None}),
        ]
        runs = router.post(f"{api}/flow_runs/filter").respond(json=[{"id": "x"}])
        router.get(f"{api}/flow_run_states/", params={"flow_run_id": "x"}).respond(
            json=[{"type": "PENDING"}, {"type": "RUNNING"}, {"type": "COMPLETED"}]
        )
        found = recorder._remote_flow_run_events()
    assert [e.event for e in found] == [f"prefect.flow-run.{n}" for n in ("Pending", "Running", "Completed")]
    assert reads.call_count == 3
    assert runs.calls.last.request.content.count(b"pytest-prefect-flows:abc") == 1
