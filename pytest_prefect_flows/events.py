"""Events of a test's runs, recorded in memory: the engine's, the server's and `emit_event`'s.

Works without pytest::

    with record_events() as recorder:
        my_flow()
    assert_event_emitted(recorder.log, "prefect.flow-run.Completed")

Where each event comes from, and how it is caught in this process, with no websocket:

* task-run state events and `emit_event(...)` calls are built by the client and handed to Prefect's
  `EventsWorker`; while recording, its client is Prefect's own `AssertingEventsClient`, which keeps
  them in memory (outside recording, the plugin's `NullEventsClient` drops them before they are built);
* flow-run state events are emitted by the server's orchestration when it accepts a state. The
  isolated backend's API runs in this process, so a tap on its in-memory `events` topic receives
  them as they are published (`_compat.tap_server_events`); nothing is synthesized;
* with `prefect_backend = server:<URL>` the client's events are recorded the same way (and still
  sent to the server), and the flow-run events are read back from the server's `/events/filter`,
  restricted to runs tagged with the session tag. The server stores events in batches (its event
  persister flushes every few seconds), so reading them waits until every such flow run has one
  stored event per state, for at most `PERSISTER_WAIT_FLUSHES` flush intervals and
  `PERSISTER_WAIT_GRACE` seconds; a server whose event persister is off is not waited for.

Events are kept in order of `occurred` (the time their sender gave them); ties keep arrival order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.exceptions import UsageError

if TYPE_CHECKING:
    from prefect.events import Event

__all__ = ["EventLog", "EventRecorder", "assert_event_emitted", "assert_no_event", "record_events"]

MAX_PAGES = 20  # of the server's 50 events each, read back per collection on a `server:` backend
# How long to wait for a `server:` backend to store flow-run events: flush intervals, plus seconds.
PERSISTER_WAIT_FLUSHES = 3
PERSISTER_WAIT_GRACE = 10.0
SHOWN_EVENTS = 40  # events listed in a failure message
HINT = (
    "More: prefect_events.timeline(), .named(pattern), .for_run(run); events are recorded only in "
    "tests that request the prefect_events fixture."
)


class EventRecorder:
    """Records the events of everything run inside it; `.log` is the live `EventLog`."""

    def __init__(self, *, session_tag: str | None = None) -> None:
        """`session_tag`: set for a `server:` backend, whose flow-run events are read from the server."""
        self._session_tag = session_tag
        self._flush_interval: float | None = None  # the `server:` backend's, read once
        self._client_events: list[Event] = []
        self._server_messages: list[bytes | str] = []
        self._lock = threading.Lock()
        self._undo_tap: Callable[[], None] | None = None
        self._override: contextlib.AbstractContextManager[None] | None = None
        self._client_type: Any = None
        self._started: dt.datetime | None = None
        self.log = EventLog(self.collect, "recorded")

    def __enter__(self) -> EventRecorder:
        from prefect.events.clients import AssertingEventsClient, AssertingPassthroughEventsClient

        from pytest_prefect_flows._compat import events_client_override

        self._started = dt.datetime.now(dt.timezone.utc)
        # A server backend still gets the client's events; the isolated one needs no copy.
        self._client_type = AssertingPassthroughEventsClient if self._session_tag else AssertingEventsClient
        self._override = events_client_override(self._client_type)
        self._override.__enter__()
        self._take_client_events()  # left over from an earlier recorder sharing the worker
        self._client_events.clear()
        if self._session_tag is None:
            from pytest_prefect_flows._compat import tap_server_events

            self._undo_tap = tap_server_events(self._server_messages.append)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._take_client_events()
        self._client_type = None  # the log keeps what was recorded, and records no more
        if self._undo_tap is not None:
            self._undo_tap()
            self._undo_tap = None
        if self._override is not None:
            self._override.__exit__(None, None, None)
            self._override = None

    def collect(self) -> list[Event]:
        """Every event recorded so far, in order of occurrence (waits for the events worker)."""
        if self._client_type is not None:
            self._take_client_events()
        with self._lock:
            events = list(self._client_events)
        events.extend(self._server_events())
        unique = {event.id: event for event in events}
        return sorted(unique.values(), key=lambda event: event.occurred)

    def _take_client_events(self) -> None:
        from prefect.events.worker import EventsWorker

        worker = EventsWorker.instance()
        worker.wait_until_empty()
        client = self._client_type.last
        if client is not None and hasattr(client, "events"):
            taken = client.pop_events()
            with self._lock:
                self._client_events.extend(taken)

    def _server_events(self) -> list[Event]:
        if self._session_tag is not None:
            return self._remote_flow_run_events()
        from prefect.events import ReceivedEvent

        return [ReceivedEvent.model_validate_json(data) for data in list(self._server_messages)]

    def _remote_flow_run_events(self) -> list[Event]:
        """The server's flow-run events for runs tagged with this session (as far as it has stored them)."""
        from prefect import get_client
        from prefect.events.filters import (
            EventFilter,
            EventNameFilter,
            EventOccurredFilter,
            EventRelatedFilter,
        )

        assert self._started is not None
        assert self._session_tag is not None
        event_filter = EventFilter(
            occurred=EventOccurredFilter(since=self._started - dt.timedelta(seconds=1)),  # type: ignore[arg-type]
            event=EventNameFilter(prefix=["prefect.flow-run."]),
            related=EventRelatedFilter(resources_in_roles=[(f"prefect.tag.{self._session_tag}", "tag")]),
        )
        body = {"filter": event_filter.model_dump(mode="json", exclude_unset=True), "limit": 50}
        with get_client(sync_client=True) as client:
            found = _read_events(client, body)
            if self._flush_interval is None:
                self._flush_interval = _persister_flush_interval(client)
            flush_interval = self._flush_interval
            wait = flush_interval and flush_interval * PERSISTER_WAIT_FLUSHES + PERSISTER_WAIT_GRACE
            deadline = _real_monotonic() + wait
            pause = threading.Event()
            while wait and _unstored_runs(client, self._session_tag, self._started, found):
                if _real_monotonic() >= deadline:
                    break
                pause.wait(0.1)  # real time, also under a frozen clock
                found = _read_events(client, body)
        return found


def _read_events(client: Any, body: dict[str, Any]) -> list[Event]:
    from prefect.events import ReceivedEvent

    page = client.request("POST", "/events/filter", json=body).json()
    found: list[Event] = [ReceivedEvent.model_validate(item) for item in page.get("events", [])]
    for _ in range(MAX_PAGES):
        if not page.get("next_page"):
            break
        page = client._client.get(page["next_page"]).json()
        found += [ReceivedEvent.model_validate(item) for item in page.get("events", [])]
    return found


def _persister_flush_interval(client: Any) -> float:
    """Seconds between the server's event stores; 0 when its event persister is off."""
    settings = client.request("GET", "/admin/settings").json()
    persister = settings.get("server", {}).get("services", {}).get("event_persister", {})
    if not persister.get("enabled", True):
        return 0.0
    return float(persister.get("flush_interval", 5.0))


def _unstored_runs(client: Any, tag: str, since: dt.datetime, events: list[Event]) -> list[str]:
    """Ids of the session's flow runs (since `since`) whose states the server has not all stored
    as events yet."""
    body = {
        "flow_runs": {
            "tags": {"all_": [tag]},
            "start_time": {"after_": (since - dt.timedelta(seconds=1)).isoformat()},
        },
        "limit": 200,
    }
    runs = client.request("POST", "/flow_runs/filter", json=body).json()
    stored: dict[str, int] = {}
    for event in events:
        if not event.event.endswith(".heartbeat"):
            stored[event.resource.id] = stored.get(event.resource.id, 0) + 1
    unstored = []
    for run in runs:
        states = client.request("GET", "/flow_run_states/", params={"flow_run_id": run["id"]})
        if stored.get(f"prefect.flow-run.{run['id']}", 0) < len(states.json()):
            unstored.append(run["id"])
    return unstored


def _real_monotonic() -> float:
    import freezegun.api

    return freezegun.api.real_monotonic()


def record_events(backend: Any = None) -> EventRecorder:
    """`with record_events() as recorder:` ... `recorder.log` (an `EventLog`).

    `backend`: the session's backend; a `server:` one has its flow-run events read from the server.
    """
    remote = backend is not None and backend.kind != "ephemeral"
    return EventRecorder(session_tag=backend.session_tag if remote else None)


class EventLog:
    """Events in order: `.events`, `.named(pattern)`, `.for_run(run)`, `.about(**labels)`, `.timeline()`.

    The fixture's log is live (it reads what has been recorded so far); the filtered logs it returns
    are snapshots.
    """

    def __init__(self, source: Callable[[], list[Event]] | Sequence[Event], description: str) -> None:
        self._source = source
        self._description = description

    @property
    def events(self) -> list[Event]:
        return list(self._source()) if callable(self._source) else list(self._source)

    @property
    def names(self) -> list[str]:
        return [event.event for event in self.events]

    def named(self, pattern: str) -> EventLog:
        """Events whose name matches the glob `pattern` (`prefect.flow-run.*`, `my.event`)."""
        _require_text("named", "pattern", pattern)
        return EventLog(
            [e for e in self.events if fnmatch.fnmatchcase(e.event, pattern)], f"named {pattern!r}"
        )

    def about(self, resource: Mapping[str, str]) -> EventLog:
        """Events whose primary resource has these labels (values may be globs)."""
        _require_labels("about", resource)
        return EventLog(
            [e for e in self.events if _resource_mismatch(e, resource) is None], f"about {resource}"
        )

    def for_run(self, run: Any) -> EventLog:
        """Events of one flow run (record, id or state) or task run (record).

        A flow run's events are its state events and every event related to it: its task runs' and
        the `emit_event` calls made inside it. A task run's are its own state events.
        """
        resource_id = _run_resource_id(run)
        if resource_id.startswith("prefect.task-run."):
            selected = [e for e in self.events if e.resource.id == resource_id]
        else:
            selected = [e for e in self.events if resource_id in {r.id for r in e.involved_resources}]
        return EventLog(selected, f"for {resource_id}")

    def timeline(self) -> str:
        """One line per event: offset from the first, name, resource, payload."""
        return render_events(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __getitem__(self, index: int) -> Event:
        return self.events[index]

    def __repr__(self) -> str:
        return f"<EventLog {self._description}: {len(self)} events>"


def assert_event_emitted(
    events: EventLog | Iterable[Event],
    name: str,
    resource: Mapping[str, str] | None = None,
    payload: Mapping[str, Any] | None = None,
    count: int | None = None,
) -> list[Event]:
    """An event named `name` (a glob) with these resource labels and payload items was recorded.

    With `count`, exactly that many were. Returns the matching events.
    """
    __tracebackhide__ = True
    recorded, matching, misses = _search("assert_event_emitted", events, name, resource, payload)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise UsageError(f"assert_event_emitted(count=...) takes a number of events >= 0, got {count!r}.")
    if (count is None and matching) or (count is not None and len(matching) == count):
        return matching
    times = "at least once" if count is None else f"exactly {count} time{'s' if count != 1 else ''}"
    lines = [
        f"assert_event_emitted: expected {_wanted(name, resource, payload)} {times}",
        f"observed: {len(matching)} matching event{'s' if len(matching) != 1 else ''}",
    ]
    lines += _near_misses(misses)
    raise AssertionError("\n".join([*lines, *_recorded_section(recorded)]))


def assert_no_event(
    events: EventLog | Iterable[Event],
    name: str,
    resource: Mapping[str, str] | None = None,
    payload: Mapping[str, Any] | None = None,
) -> None:
    """No event named `name` (a glob) with these resource labels and payload items was recorded."""
    __tracebackhide__ = True
    recorded, matching, _ = _search("assert_no_event", events, name, resource, payload)
    if not matching:
        return
    lines = [
        f"assert_no_event: expected no {_wanted(name, resource, payload)}",
        f"observed {len(matching)}:",
        *(f"  {line}" for line in render_events(matching, origin=_origin(recorded)).splitlines()),
    ]
    raise AssertionError("\n".join([*lines, *_recorded_section(recorded)]))


# --- matching -----------------------------------------------------------------------------------


def _search(
    helper: str,
    events: EventLog | Iterable[Event],
    name: str,
    resource: Mapping[str, str] | None,
    payload: Mapping[str, Any] | None,
) -> tuple[list[Event], list[Event], list[tuple[Event, str]]]:
    """(all events, matching ones, same-name events with the reason each did not match)."""
    recorded = _events_of(helper, events)
    _require_text(helper, "name", name)
    if resource is not None:
        _require_labels(helper, resource)
    if payload is not None and not isinstance(payload, Mapping):
        raise UsageError(f"{helper}(payload=...) takes a dict of payload items, got {payload!r}.")
    matching: list[Event] = []
    misses: list[tuple[Event, str]] = []
    for event in recorded:
        if not fnmatch.fnmatchcase(event.event, name):
            continue
        reason = _resource_mismatch(event, resource or {}) or _payload_mismatch(event.payload, payload or {})
        if reason is None:
            matching.append(event)
        else:
            misses.append((event, reason))
    return recorded, matching, misses


def _events_of(helper: str, events: Any) -> list[Event]:
    if isinstance(events, EventLog):
        return events.events
    from prefect.events import Event

    items = list(events) if isinstance(events, Iterable) and not isinstance(events, (str, bytes)) else None
    if items is None or not all(isinstance(item, Event) for item in items):
        raise UsageError(
            f"{helper}() takes the prefect_events fixture (or a list of Prefect events), got {events!r}. "
            "Request `prefect_events` in the test and pass it."
        )
    return items


def _resource_mismatch(event: Event, expected: Mapping[str, str]) -> str | None:
    for label, pattern in expected.items():
        actual = event.resource.get(label)
        if actual is None or not fnmatch.fnmatchcase(actual, str(pattern)):
            return f"resource label {label!r} is {actual!r}, expected {pattern!r}"
    return None


def _payload_mismatch(actual: Any, expected: Mapping[str, Any], path: str = "payload") -> str | None:
    for key, wanted in expected.items():
        where = f"{path}[{key!r}]"
        if not isinstance(actual, Mapping) or key not in actual:
            return f"{where} is missing, expected {wanted!r}"
        if isinstance(wanted, Mapping):
            reason = _payload_mismatch(actual[key], wanted, where)
            if reason is not None:
                return reason
        elif actual[key] != wanted:
            return f"{where} is {actual[key]!r}, expected {wanted!r}"
    return None


def _run_resource_id(run: Any) -> str:
    if hasattr(run, "task_name") and hasattr(run, "id"):
        return f"prefect.task-run.{run.id}"
    state_details = getattr(run, "state_details", None)
    if state_details is not None:
        run = state_details.flow_run_id
    run_id = getattr(run, "id", run)
    if run_id is None or isinstance(run_id, (bool, int, float)) or not str(run_id):
        raise UsageError(
            f"for_run() takes a flow run (the record run_flow returns, a State or a run id) or a task "
            f"run record, got {run!r}."
        )
    return f"prefect.flow-run.{run_id}"


def _require_text(helper: str, argument: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise UsageError(
            f"{helper}() takes the event {argument} as text such as 'prefect.flow-run.*', got {value!r}."
        )


def _require_labels(helper: str, labels: Any) -> None:
    if not isinstance(labels, Mapping) or not all(isinstance(k, str) for k in labels):
        raise UsageError(
            f"{helper}(resource=...) takes a dict of resource labels such as "
            f"{{'prefect.resource.id': 'my.resource.*'}}, got {labels!r}."
        )


# --- messages -----------------------------------------------------------------------------------


def _wanted(name: str, resource: Mapping[str, str] | None, payload: Mapping[str, Any] | None) -> str:
    parts = [f"event {name!r}"]
    if resource:
        parts.append(f"with resource {dict(resource)!r}")
    if payload:
        parts.append(f"with payload {dict(payload)!r}")
    return " ".join(parts)


def _near_misses(misses: list[tuple[Event, str]]) -> list[str]:
    if not misses:
        return []
    lines = ["events with that name that did not match:"]
    lines += [
        f"  {event.event} ({_resource_text(event)}): {reason}" for event, reason in misses[:SHOWN_EVENTS]
    ]
    return lines


def _recorded_section(recorded: list[Event]) -> list[str]:
    if not recorded:
        return ["no events were recorded.", HINT]
    shown = recorded[-SHOWN_EVENTS:]
    cut = f", last {len(shown)} shown" if len(shown) < len(recorded) else ""
    title = f"events recorded ({len(recorded)}{cut}):"
    body = render_events(shown, origin=_origin(recorded)).splitlines()
    return [title, *(f"  {line}" for line in body), HINT]


def _origin(events: Sequence[Event]) -> dt.datetime | None:
    return events[0].occurred if events else None


def render_events(events: Sequence[Event], origin: dt.datetime | None = None) -> str:
    """`+0.012s  prefect.task-run.Completed  extract-0 (prefect.task-run.…)  {payload}` per event."""
    if not events:
        return "(no events)"
    start = origin or events[0].occurred
    width = max(len(event.event) for event in events)
    lines = []
    for event in events:
        offset = (event.occurred - start).total_seconds()
        line = f"{offset:+9.3f}s  {event.event:<{width}}  {_resource_text(event)}"
        if event.payload and not event.event.startswith(("prefect.flow-run.", "prefect.task-run.")):
            line += f"  {_short(repr(event.payload))}"
        lines.append(line)
    return "\n".join(lines)


def _resource_text(event: Event) -> str:
    name = event.resource.get("prefect.resource.name")
    return f"{name} ({event.resource.id})" if name else event.resource.id


def _short(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
