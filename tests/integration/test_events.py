"""`prefect_events`, the event assertions and `automation_fires` as users meet them, in one session."""

from __future__ import annotations

import subprocess
import sys

import pytest

FLOWS = """
from prefect import flow, task
from prefect.events import emit_event


@task
def load(rows: int) -> int:
    if rows < 0:
        raise ValueError("negative rows")
    return rows


@flow
def publish(rows: int) -> int:
    loaded = load(rows)
    emit_event(
        "warehouse.table.refreshed",
        resource={"prefect.resource.id": "warehouse.table.orders", "team": "data"},
        payload={"rows": loaded},
    )
    return loaded


@flow
def ping(name: str) -> None:
    emit_event("monitor.ping", resource={"prefect.resource.id": f"monitor.{name}"})
"""

TESTS = """
import datetime as dt

import pytest
from prefect.events import emit_event
from prefect.events.schemas.automations import (
    CompoundTrigger,
    EventTrigger,
    Posture,
    SequenceTrigger,
)

from flows import ping, publish
from pytest_prefect_flows import (
    UsageError,
    assert_event_emitted,
    assert_no_event,
    automation_fires,
    deployment_triggers,
)

FAILED = EventTrigger(
    expect={"prefect.flow-run.Failed"},
    match={"prefect.resource.id": "prefect.flow-run.*"},
    posture=Posture.Reactive,
    threshold=1,
)


def test_custom_event_by_name_resource_and_payload(run_flow, prefect_events):
    run = run_flow(publish, 3)
    [event] = assert_event_emitted(
        prefect_events,
        "warehouse.table.refreshed",
        resource={"prefect.resource.id": "warehouse.table.orders", "team": "data"},
        payload={"rows": 3},
        count=1,
    )
    run_events = prefect_events.for_run(run)
    assert event in run_events.events
    names = run_events.named("prefect.*-run.*").names
    assert names[0] == "prefect.flow-run.Pending" and names[-1] == "prefect.flow-run.Completed"
    assert "prefect.task-run.Completed" in names
    assert prefect_events.for_run(run.task("load")).names[-1] == "prefect.task-run.Completed"
    assert_no_event(prefect_events, "prefect.flow-run.Failed")


def test_missing_event_lists_what_was_seen(run_flow, prefect_events):
    run_flow(publish, 3)
    assert_event_emitted(prefect_events, "warehouse.table.refreshed", payload={"rows": 4})


def test_unexpected_event_is_shown(run_flow, prefect_events):
    run_flow(publish, -1)
    assert_no_event(prefect_events, "prefect.flow-run.Failed")


def test_failed_trigger_fires_for_the_failing_run_only(run_flow, prefect_events):
    good = run_flow(publish, 1)
    assert automation_fires(FAILED, prefect_events.for_run(good)) == []
    bad = run_flow(publish, -1)
    [firing] = automation_fires(FAILED, prefect_events)
    assert [e.event for e in firing.events] == ["prefect.flow-run.Failed"]
    assert firing.events[0].resource.id == f"prefect.flow-run.{bad.id}"
    assert firing.at == firing.events[0].occurred


def test_threshold_fires_on_the_third_event_within_a_minute(prefect_clock, prefect_events):
    trigger = EventTrigger(
        expect={"monitor.ping"}, posture=Posture.Reactive, threshold=3, within=dt.timedelta(seconds=60)
    )
    prefect_clock.freeze("2026-01-01T00:00:00Z")
    for _ in range(2):
        emit_event("monitor.ping", resource={"prefect.resource.id": "monitor.db"})
        prefect_clock.tick(20)
    assert automation_fires(trigger, prefect_events) == []
    emit_event("monitor.ping", resource={"prefect.resource.id": "monitor.db"})
    [firing] = automation_fires(trigger, prefect_events)
    assert len(firing.events) == 3
    assert firing.at == dt.datetime(2026, 1, 1, 0, 0, 40, tzinfo=dt.timezone.utc)
    assert "reactive: 3 event(s) >= threshold 3 within 60s" in firing.reason


def test_threshold_not_met_when_spread_over_more_than_a_minute(prefect_clock, prefect_events):
    trigger = {"expect": ["monitor.ping"], "posture": "Reactive", "threshold": 3, "within": 60}
    prefect_clock.freeze("2026-01-01T00:00:00Z")
    for _ in range(3):
        emit_event("monitor.ping", resource={"prefect.resource.id": "monitor.db"})
        prefect_clock.tick(35)
    assert automation_fires(trigger, prefect_events) == []


def test_proactive_trigger_fires_when_the_event_does_not_arrive(run_flow, prefect_events):
    never_completed = EventTrigger(
        after={"prefect.flow-run.Running"},
        expect={"prefect.flow-run.Completed"},
        for_each={"prefect.resource.id"},
        match={"prefect.resource.id": "prefect.flow-run.*"},
        posture=Posture.Proactive,
        threshold=1,
        within=dt.timedelta(minutes=5),
    )
    run_flow(publish, 2)
    assert automation_fires(never_completed, prefect_events) == []
    bad = run_flow(publish, -1)
    [firing] = automation_fires(never_completed, prefect_events)
    [running] = firing.events
    assert (running.event, running.resource.id) == ("prefect.flow-run.Running", f"prefect.flow-run.{bad.id}")
    assert firing.at == running.occurred + dt.timedelta(minutes=5)
    assert automation_fires(never_completed, prefect_events, until=firing.at - dt.timedelta(seconds=1)) == []


def test_compound_and_sequence(run_flow, prefect_events):
    refreshed = EventTrigger(expect={"warehouse.table.refreshed"}, posture=Posture.Reactive, threshold=1)
    pinged = EventTrigger(expect={"monitor.ping"}, posture=Posture.Reactive, threshold=1)
    run_flow(publish, 1)
    run_flow(ping, "db")
    both = CompoundTrigger(triggers=[refreshed, pinged], require="all", within=dt.timedelta(minutes=1))
    [firing] = automation_fires(both, prefect_events)
    assert [e.event for e in firing.events] == ["warehouse.table.refreshed", "monitor.ping"]
    assert len(automation_fires(SequenceTrigger(triggers=[refreshed, pinged]), prefect_events)) == 1
    assert automation_fires(SequenceTrigger(triggers=[pinged, refreshed]), prefect_events) == []


def test_trigger_from_prefect_yaml(run_flow, prefect_events):
    [automation] = deployment_triggers("prefect.yaml", "rerun-on-failure")
    run_flow(publish, 1)
    assert automation_fires(automation, prefect_events) == []
    run_flow(publish, -1)
    [firing] = automation_fires(automation, prefect_events)
    assert firing.actions == ["run-deployment 'rerun-on-failure' with parameters {'rows': 0}"]
    with pytest.raises(UsageError, match="no deployment named 'nope'; deployments: 'rerun-on-failure'"):
        deployment_triggers("prefect.yaml", "nope")


def test_bad_trigger_is_a_usage_error(prefect_events):
    with pytest.raises(UsageError, match="not a valid Prefect trigger"):
        automation_fires({"expect": ["x"], "threshold": "many"}, prefect_events)
    with pytest.raises(UsageError, match="takes the prefect_events fixture"):
        assert_event_emitted("my.event", "my.event")


def test_no_fixture_no_events():
    from prefect.events.clients import NullEventsClient
    from prefect.events.worker import EventsWorker
    from prefect.server.utilities.messaging.memory import Topic

    ping("db")
    assert EventsWorker.instance().client_type is NullEventsClient
    taps = [s for s in Topic.by_name("events")._subscriptions if type(s).__name__ == "_EventsTopicTap"]
    assert taps == []
"""

PREFECT_YAML = """
deployments:
  - name: rerun-on-failure
    entrypoint: flows.py:publish
    triggers:
      - enabled: true
        match:
          prefect.resource.id: prefect.flow-run.*
        expect:
          - prefect.flow-run.Failed
        parameters:
          rows: 0
"""


def test_events_assertions_and_automations(pytester: pytest.Pytester) -> None:
    """One session: 9 behaviours pass; the two failing tests show their messages."""
    pytester.makepyfile(flows=FLOWS, test_events=TESTS)
    pytester.path.joinpath("prefect.yaml").write_text(PREFECT_YAML)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.stdout.fnmatch_lines(
        [
            "*assert_event_emitted: expected event 'warehouse.table.refreshed' with payload {'rows': 4} *",
            "*observed: 0 matching events",
            "*events with that name that did not match:",
            "*warehouse.table.refreshed (warehouse.table.orders): payload[[]'rows'] is 3, expected 4",
            "*events recorded (*):",
            "*prefect.flow-run.Pending*",
            "*prefect.flow-run.Completed*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*assert_no_event: expected no event 'prefect.flow-run.Failed'",
            "*observed 1:",
            "*prefect.flow-run.Failed *(prefect.flow-run.*)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "FAILED test_events.py::test_missing_event_lists_what_was_seen - *",
            "FAILED test_events.py::test_unexpected_event_is_shown - *",
        ]
    )
    result.assert_outcomes(passed=9, failed=2)


# A Prefect server of its own in a subprocess: a pytester session that used this process's backend
# leaves it unable to read package metadata (PackageNotFoundError for prefect, pydocket) afterwards.
SERVER = """
import os, sys
from pytest_prefect_flows.backend import IsolatedBackend, environment

# A server that stores events as Prefect's does: its event persister on, flushing every second.
environment._SERVICES = tuple(s for s in environment._SERVICES if s != "EVENT_PERSISTER")
os.environ["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"] = "true"  # not the outer session's
os.environ["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL"] = "1"
with IsolatedBackend() as backend:
    backend.ensure_started()
    print(backend.api_url, flush=True)
    sys.stdin.read()  # serve until the test closes stdin
"""


def test_server_backend_records_the_session_s_client_events(pytester: pytest.Pytester) -> None:
    """With `server:<URL>`, events still reach the server and are recorded here, tagged with the
    session; the flow-run events are read back once the server's event persister has stored them."""
    pytester.makepyfile(flows=FLOWS)
    pytester.makepyfile(
        """
        from flows import publish
        from pytest_prefect_flows import assert_event_emitted

        def test_events(run_flow, prefect_events):
            run = run_flow(publish, 3)
            assert_event_emitted(prefect_events, "warehouse.table.refreshed", payload={"rows": 3})
            [done] = assert_event_emitted(prefect_events.for_run(run), "prefect.task-run.Completed")
            tags = [r.id for r in done.related if r.role == "tag"]
            assert [t for t in tags if t.startswith("prefect.tag.pytest-prefect-flows:")], tags
            assert_event_emitted(prefect_events.for_run(run), "prefect.flow-run.Completed")
        """
    )
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        api_url = server.stdout.readline().strip()
        assert api_url.startswith("http://127.0.0.1:"), api_url
        result = pytester.runpytest_subprocess(
            "-q", "-p", "no:cacheprovider", f"--prefect-backend=server:{api_url}"
        )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    result.assert_outcomes(passed=1)
