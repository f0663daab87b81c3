"""Would this automation fire? Prefect triggers evaluated against recorded events, in memory.

`automation_fires(trigger, events)` answers with the firings an automation would have, each with
the time it fires (`.at`), the events behind it and the actions it would run. Which events a trigger
looks at (`expect`, `after`, `match`, `match_related`, `for_each`), its thresholds and the readiness
of compound and sequence triggers are decided by Prefect's own server-side trigger models
(`prefect.server.events.schemas.automations`: `covers`, `starts_after`, `expects`, `bucketing_key`,
`meets_threshold`, `ready_to_fire`). The bucket bookkeeping that the server keeps in its database
(`prefect.server.events.triggers.evaluate`) is followed here step by step, in memory, on the events'
own clock: `within` windows are measured between `occurred` times, never waited for.

Proactive triggers fire when a window closes without enough events. Unless `until` is given, every
window still open after the last event is allowed to run out, as if nothing else arrived.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.exceptions import UsageError

if TYPE_CHECKING:
    from prefect.events import Event

__all__ = ["DeploymentAutomation", "Firing", "automation_fires", "deployment_triggers"]

# Deployment-trigger fields that belong to the automation and its action, not to the trigger.
_DEPLOYMENT_FIELDS = {"name", "description", "enabled", "parameters", "job_variables", "schedule_after"}


@dataclass
class Firing:
    """One firing of an automation: when (`at`), on which events, and the actions it would run."""

    at: dt.datetime
    events: list[Event]
    reason: str
    actions: list[str] = field(default_factory=list)
    trigger: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        names = ", ".join(event.event for event in self.events) or "no events"
        return f"<Firing at {self.at.isoformat()} ({self.reason}) on [{names}] actions={self.actions}>"


@dataclass
class DeploymentAutomation:
    """A `triggers:` entry of a `prefect.yaml` deployment: the trigger, and the deployment it runs."""

    deployment: str
    file: Path
    index: int
    trigger: Any = field(repr=False)

    @property
    def name(self) -> str:
        return getattr(self.trigger, "name", None) or f"{self.deployment} triggers[{self.index}]"

    def actions(self, event: Event | None = None) -> list[str]:
        """The run it starts; with `event`, its parameters' `{{ event.* }}` templates are rendered."""
        parameters = getattr(self.trigger, "parameters", None)
        if parameters and event is not None:
            parameters = _render_templates(parameters, event)
        suffix = f" with parameters {parameters!r}" if parameters else ""
        return [f"run-deployment {self.deployment!r}{suffix}"]


def deployment_triggers(source: Path | str, deployment: str) -> list[DeploymentAutomation]:
    """The automations of one deployment's `triggers:` in a `prefect.yaml` file, validated by Prefect."""
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter, ValidationError

    from pytest_prefect_flows.prefect_yaml import load_project

    project = load_project(source)
    spec = project.deployment(deployment)
    adapter: TypeAdapter[Any] = TypeAdapter(DeploymentTriggerTypes)
    automations = []
    for index, raw in enumerate(spec.triggers):
        try:
            trigger = adapter.validate_python(raw)
        except ValidationError as exc:
            raise UsageError(
                f"{spec.label}: triggers[{index}] is not a valid Prefect trigger:\n{_errors(exc)}\n"
                "Fix the entry (see Prefect's automations docs for the trigger fields)."
            ) from None
        automations.append(DeploymentAutomation(spec.name, spec.file, index, trigger))
    return automations


def automation_fires(trigger: Any, events: Any, *, until: dt.datetime | None = None) -> list[Firing]:
    """The firings of `trigger` over `events` (the `prefect_events` fixture or a list of events).

    `trigger`: a Prefect trigger (`EventTrigger`, `CompoundTrigger`, `SequenceTrigger`, a deployment
    trigger, or their server-side models), a dict in the `prefect.yaml` `triggers:` form, an
    `Automation` (its actions are named in the firings), or a `DeploymentAutomation` from
    `deployment_triggers(...)`. `until`: evaluate proactive windows only up to this time.
    """
    server_trigger, describe_actions = _resolve(trigger)
    timeline = _timeline(events)
    if until is not None:
        until = _aware(until)
        timeline = [pair for pair in timeline if pair[0].occurred <= until]
    firings = _firings(server_trigger, timeline, until)
    for firing in firings:
        firing.actions = describe_actions(firing.events[-1] if firing.events else None)
    return firings


# --- evaluation ---------------------------------------------------------------------------------

_Pair = tuple[Any, "Event"]  # (the server-side copy Prefect's models evaluate, the recorded event)


def _firings(trigger: Any, timeline: list[_Pair], until: dt.datetime | None) -> list[Firing]:
    from prefect.server.events.schemas.automations import CompositeTrigger

    if isinstance(trigger, CompositeTrigger):
        return _composite_firings(trigger, timeline, until)
    return _EventTriggerRun(trigger, timeline, until).run()


def _composite_firings(trigger: Any, timeline: list[_Pair], until: dt.datetime | None) -> list[Firing]:
    """Like `triggers.evaluate_composite_trigger`: keep each child's latest firing, fire when ready."""
    children = [(child, firing) for child in trigger.triggers for firing in _firings(child, timeline, until)]
    children.sort(key=lambda pair: pair[1].at)
    fired: list[Firing] = []
    current: dict[Any, tuple[Any, Firing]] = {}
    for child, firing in children:
        if trigger.num_expected_firings == 1:
            fired.append(_combined(trigger, [firing]))
            continue
        if trigger.within is not None:
            horizon = firing.at - trigger.within
            current = {key: held for key, held in current.items() if held[1].at >= horizon}
        current[child.id] = (child, firing)
        held = [types.SimpleNamespace(trigger=c, triggered=f.at) for c, f in current.values()]
        if trigger.ready_to_fire(held):
            fired.append(_combined(trigger, [f for _, f in current.values()]))
            current = {}
    return fired


def _combined(trigger: Any, children: list[Firing]) -> Firing:
    events = [event for child in sorted(children, key=lambda f: f.at) for event in child.events]
    reasons = "; ".join(child.reason for child in children)
    return Firing(
        at=max(c.at for c in children), events=events, reason=f"{trigger.type}: {reasons}", trigger=trigger
    )


@dataclass
class _Bucket:
    start: dt.datetime
    end: dt.datetime
    count: int = 0
    events: list[Event] = field(default_factory=list)


class _EventTriggerRun:
    """One event trigger over a timeline: `reactive_evaluation`, `evaluate` and `proactive_evaluation`
    of `prefect.server.events.triggers`, with the buckets in a dict instead of a table."""

    def __init__(self, trigger: Any, timeline: list[_Pair], until: dt.datetime | None) -> None:
        from prefect.server.events.ordering import PRECEDING_EVENT_LOOKBACK

        self.trigger = trigger
        self.timeline = timeline
        self.lookback = PRECEDING_EVENT_LOOKBACK
        self.proactive = trigger.posture == "Proactive"
        first = timeline[0][0].occurred if timeline else (until or dt.datetime.now(dt.timezone.utc))
        last = timeline[-1][0].occurred if timeline else first
        self.horizon = until or last + trigger.within
        self.buckets: dict[tuple[str, ...], _Bucket] = {}
        self.fired: list[Firing] = []
        if self.proactive and not trigger.for_each and not trigger.after:
            self.buckets[()] = _Bucket(first, first + trigger.within)

    def run(self) -> list[Firing]:
        for received, event in self.timeline:
            self._close_windows(received.occurred)
            if self.trigger.covers(received):
                self._on_event(received, event)
        if self.proactive:
            self._close_windows(self.horizon)
        return self.fired

    def _on_event(self, received: Any, event: Event) -> None:
        trigger, key, now = self.trigger, self.trigger.bucketing_key(received), received.occurred
        bucket = self.buckets.get(key)
        if trigger.after and trigger.starts_after(received.event) and bucket is None:
            # an event both after and expected opens its bucket at -1, so it does not count itself
            bucket = _Bucket(now, now + trigger.within, -1 if trigger.expects(received.event) else 0, [event])
            self.buckets[key] = bucket
        if bucket is None and not trigger.after and trigger.expects(received.event):
            bucket = self.buckets[key] = _Bucket(now - self.lookback, now + trigger.within)
        if bucket is None or not trigger.expects(received.event):
            return
        self._evaluate(key, bucket, now, received, event)

    def _close_windows(self, now: dt.datetime) -> None:
        """Proactive evaluation of every window that has closed by `now`, at the time it closed."""
        if not self.proactive:
            return
        while True:
            due = [(b.end, key) for key, b in self.buckets.items() if b.end <= now]
            if not due:
                return
            end, key = min(due)
            self._evaluate(key, self.buckets[key], end, None, None)

    def _evaluate(
        self, key: tuple[str, ...], bucket: _Bucket, now: dt.datetime, received: Any, event: Any
    ) -> None:
        trigger = self.trigger
        count = 1 if event is not None else 0
        if now < bucket.start:
            return  # a late event for a window that has already moved on
        if count and (trigger.immediate or bucket.start <= now < bucket.end):
            bucket.count += 1
            bucket.events.append(event)
            count = 0
        ready = not self.proactive or bucket.end <= now
        if ready and trigger.meets_threshold(bucket.count):
            self.fired.append(self._firing(bucket, now))
            del self.buckets[key]
        elif now < bucket.end:
            if self._opens_next_window(bucket, received):  # a heartbeat: each one opens the next window
                self.buckets[key] = _Bucket(now, now + trigger.within, 0, [event])
            return
        self._next_window(key, bucket, now, count, received, event)

    def _opens_next_window(self, bucket: _Bucket, received: Any) -> bool:
        trigger = self.trigger
        return (
            received is not None
            and self.proactive
            and not trigger.meets_threshold(bucket.count)
            and trigger.starts_after(received.event)
            and trigger.expects(received.event)
        )

    def _next_window(
        self, key: tuple[str, ...], bucket: _Bucket, now: dt.datetime, count: int, received: Any, event: Any
    ) -> None:
        trigger = self.trigger
        if trigger.after:
            self.buckets.pop(key, None)
            return
        if trigger.within == dt.timedelta(0):
            return
        start = max(bucket.end, now)
        following = _Bucket(start, start + trigger.within)
        self.buckets[key] = following
        if not self.proactive and count > 0:
            self._evaluate(key, following, now, received, event)
        elif count:
            following.count, following.events = count, [event]

    def _firing(self, bucket: _Bucket, now: dt.datetime) -> Firing:
        trigger = self.trigger
        window = f"within {trigger.within.total_seconds():g}s" if trigger.within else "immediately"
        counted = max(bucket.count, 0)
        if self.proactive:
            reason = f"proactive: {counted} expected event(s) < threshold {trigger.threshold} {window}"
        else:
            reason = f"reactive: {counted} event(s) >= threshold {trigger.threshold} {window}"
        return Firing(at=now, events=list(bucket.events), reason=reason, trigger=trigger)


# --- inputs -------------------------------------------------------------------------------------


def _resolve(trigger: Any) -> tuple[Any, Callable[[Event | None], list[str]]]:
    """(the server-side trigger model, what names a firing's actions) for what the user passed."""
    if isinstance(trigger, DeploymentAutomation):
        return _server_trigger(trigger.trigger), trigger.actions
    if hasattr(trigger, "trigger") and hasattr(trigger, "actions") and not callable(trigger.actions):
        described = [_describe_action(action) for action in trigger.actions]
        return _server_trigger(trigger.trigger), lambda _event: list(described)
    return _server_trigger(trigger), lambda _event: []


def _render_templates(parameters: dict[str, Any], event: Event) -> dict[str, Any]:
    """Parameter values rendered the way the server's RunDeployment action renders them, as far as
    the event alone goes (`{{ event.* }}`; a template naming `flow_run` or `deployment` stays as written)."""
    from prefect.server.utilities.user_templates import maybe_template, render_user_template_sync

    rendered: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, dict):
            rendered[key] = _render_templates(value, event)
        elif isinstance(value, str) and maybe_template(value) and "event" in value:
            rendered[key] = render_user_template_sync(value, {"event": event})
        else:
            rendered[key] = value
    return rendered


def _server_trigger(trigger: Any) -> Any:
    from prefect.server.events.schemas.automations import ServerTriggerTypes, Trigger
    from pydantic import BaseModel, TypeAdapter, ValidationError

    if isinstance(trigger, Trigger):
        return trigger
    if isinstance(trigger, BaseModel):
        data = trigger.model_dump(mode="json", exclude=_DEPLOYMENT_FIELDS & set(type(trigger).model_fields))
    elif isinstance(trigger, dict):
        data = _plain_trigger_data(trigger)
    else:
        raise UsageError(
            f"automation_fires() takes a Prefect trigger (EventTrigger, CompoundTrigger, SequenceTrigger), "
            f"an Automation, a dict like a prefect.yaml `triggers:` entry, or an entry of "
            f"deployment_triggers(...); got {trigger!r}."
        )
    if data.get("type") == "metric" or data.get("posture") == "Metric":
        raise UsageError(
            "automation_fires() evaluates event, compound and sequence triggers; a metric trigger "
            "queries the server's event metrics and cannot be evaluated against recorded events."
        )
    try:
        return TypeAdapter(ServerTriggerTypes).validate_python(data)
    except ValidationError as exc:
        raise UsageError(
            f"automation_fires(): {trigger!r} is not a valid Prefect trigger:\n{_errors(exc)}"
        ) from None


def _plain_trigger_data(spec: dict[str, Any]) -> dict[str, Any]:
    """A `triggers:`-style dict as a trigger: Prefect's deployment-trigger defaults, without action fields."""
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter, ValidationError

    try:
        parsed = TypeAdapter(DeploymentTriggerTypes).validate_python(spec)
    except ValidationError as exc:
        raise UsageError(
            f"automation_fires(): {spec!r} is not a valid Prefect trigger:\n{_errors(exc)}"
        ) from None
    data: dict[str, Any] = parsed.model_dump(mode="json", exclude=_DEPLOYMENT_FIELDS)
    return data


def _describe_action(action: Any) -> str:
    kind = getattr(action, "type", type(action).__name__)
    details = {
        key: value
        for key, value in action.model_dump(mode="json", exclude={"type"}).items()
        if value not in (None, {}, [], "")
    }
    return f"{kind} {details}" if details else str(kind)


def _timeline(events: Any) -> list[_Pair]:
    """The recorded events in `occurred` order, each with a server-side copy for Prefect's models."""
    from prefect.server.events.schemas.events import ReceivedEvent

    from pytest_prefect_flows.events import EventLog, _events_of

    recorded = events.events if isinstance(events, EventLog) else _events_of("automation_fires", events)
    pairs = []
    for event in sorted(recorded, key=lambda e: e.occurred):
        data = event.model_dump(mode="json")
        data.setdefault("received", data["occurred"])
        pairs.append((ReceivedEvent.model_validate(data), event))
    return pairs


def _aware(moment: dt.datetime) -> dt.datetime:
    if not isinstance(moment, dt.datetime):
        raise UsageError(f"automation_fires(until=...) takes a datetime, got {moment!r}.")
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _errors(exc: Any) -> str:
    return "\n".join(
        f"  {'.'.join(str(p) for p in error['loc']) or '(trigger)'}: {error['msg']}" for error in exc.errors()
    )
