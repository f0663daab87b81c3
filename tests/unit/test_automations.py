"""`automation_fires` over hand-made events: the bucket rules, composites and bad input, without a server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from prefect.events import Event
from prefect.events.schemas.automations import CompoundTrigger, EventTrigger, Posture, SequenceTrigger

from pytest_prefect_flows import UsageError, automation_fires, deployment_triggers

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def at(seconds: float, name: str = "beat", resource: str = "monitor.db") -> Event:
    return Event(
        event=name, resource={"prefect.resource.id": resource}, occurred=T0 + dt.timedelta(seconds=seconds)
    )


def offsets(firings: list) -> list[float]:
    return [(firing.at - T0).total_seconds() for firing in firings]


def test_immediate_reactive_trigger_fires_for_every_event() -> None:
    trigger = EventTrigger(expect={"beat"}, posture=Posture.Reactive, threshold=1)
    assert offsets(automation_fires(trigger, [at(0), at(5, "other"), at(9)])) == [0, 9]


def test_threshold_starts_counting_again_after_firing() -> None:
    trigger = EventTrigger(
        expect={"beat"}, posture=Posture.Reactive, threshold=2, within=dt.timedelta(seconds=60)
    )
    firings = automation_fires(trigger, [at(0), at(10), at(20), at(30), at(75), at(80)])
    assert offsets(firings) == [10, 80]  # after firing, events wait for the window to end (70 s)
    assert [len(firing.events) for firing in firings] == [2, 2]


def test_for_each_keeps_one_window_per_resource() -> None:
    trigger = EventTrigger(
        expect={"beat"}, for_each={"prefect.resource.id"}, posture=Posture.Reactive, threshold=2, within=60
    )
    events = [at(0, resource="a"), at(1, resource="b"), at(2, resource="a")]
    [firing] = automation_fires(trigger, events)
    assert [event.resource.id for event in firing.events] == ["a", "a"]


def test_proactive_heartbeat_fires_for_the_silent_window_only() -> None:
    trigger = EventTrigger(
        expect={"beat"}, posture=Posture.Proactive, threshold=1, within=dt.timedelta(seconds=30)
    )
    [firing] = automation_fires(trigger, [at(0), at(70)])
    assert offsets([firing]) == [60]
    assert "proactive: 0 expected event(s) < threshold 1 within 30s" in firing.reason
    assert automation_fires(trigger, [at(0), at(70)], until=T0 + dt.timedelta(seconds=59)) == []


def test_compound_within_forgets_old_firings() -> None:
    a = EventTrigger(expect={"a"}, posture=Posture.Reactive, threshold=1)
    b = EventTrigger(expect={"b"}, posture=Posture.Reactive, threshold=1)
    both = CompoundTrigger(triggers=[a, b], require="all", within=dt.timedelta(seconds=30))
    assert offsets(automation_fires(both, [at(0, "a"), at(40, "b"), at(50, "a")])) == [50]
    either = CompoundTrigger(triggers=[a, b], require="any")
    assert offsets(automation_fires(either, [at(0, "a"), at(40, "b")])) == [0, 40]


def test_sequence_needs_the_order() -> None:
    a = EventTrigger(expect={"a"}, posture=Posture.Reactive, threshold=1)
    b = EventTrigger(expect={"b"}, posture=Posture.Reactive, threshold=1)
    assert offsets(
        automation_fires(SequenceTrigger(triggers=[a, b]), [at(0, "b"), at(1, "a"), at(2, "b")])
    ) == [2]
    assert automation_fires(SequenceTrigger(triggers=[a, b]), [at(0, "b"), at(1, "a")]) == []


def test_an_automation_names_its_actions() -> None:
    from prefect.automations import Automation
    from prefect.events.actions import CancelFlowRun

    automation = Automation(
        name="stop",
        trigger=EventTrigger(expect={"beat"}, posture=Posture.Reactive, threshold=1),
        actions=[CancelFlowRun()],
    )
    [firing] = automation_fires(automation, [at(0)])
    assert firing.actions == ["cancel-flow-run"]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("beat", "automation_fires\\(\\) takes a Prefect trigger"),
        ({"expect": ["beat"], "threshold": "many"}, "is not a valid Prefect trigger:\n  .*threshold"),
        (
            {"type": "metric", "metric": {"name": "lateness", "threshold": 1, "operator": ">"}},
            "metric trigger",
        ),
    ],
)
def test_bad_triggers_are_usage_errors(trigger: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        automation_fires(trigger, [at(0)])


def test_until_must_be_a_datetime() -> None:
    with pytest.raises(UsageError, match=r"until=...\) takes a datetime, got 'tomorrow'"):
        automation_fires({"expect": ["beat"]}, [at(0)], until="tomorrow")  # type: ignore[arg-type]


def test_deployment_triggers_errors_name_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(
        "deployments:\n"
        "  - name: a\n    triggers: [{expect: [x], posture: Sideways}]\n"
        "  - name: b\n    triggers: x\n"
    )
    with pytest.raises(UsageError, match=r"prefect.yaml::a: triggers\[0\] is not a valid Prefect trigger"):
        deployment_triggers(path, "a")
    with pytest.raises(UsageError, match=r"prefect.yaml::b: `triggers:` must be a list of trigger mappings"):
        deployment_triggers(path, "b")
    with pytest.raises(UsageError, match="no deployment named 'c'; deployments: 'a', 'b'"):
        deployment_triggers(path, "c")
