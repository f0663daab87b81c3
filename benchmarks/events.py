"""What recording events costs: per-flow time with `prefect_events` against without, on the isolated backend.

    python benchmarks/events.py [--runs 30] [--tasks 3]

Each round runs the same flow (`--tasks` tasks and one `emit_event`) once in each mode, in turn, so
that a busy moment of the machine hits every mode alike:

* `off`: what every test gets: the plugin's `NullEventsClient`, no event is built;
* `prefect_events`: what a test that requests the fixture gets: client events kept by Prefect's
  `AssertingEventsClient`, flow-run events tapped from the in-process server, and the test reading
  them all once (`len(events)`) after the run, as an assertion would;
* `websocket`: Prefect's own default against a server (native behaviour): `PrefectEventsClient`
  sending every event over a websocket to the in-process API.

Prints the median and mean seconds per flow run of each mode and the ratios to `off` (target for
`prefect_events`: under 10% more).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect import flow, task
from prefect.events import emit_event

from pytest_prefect_flows._compat import events_client_override
from pytest_prefect_flows.backend import IsolatedBackend
from pytest_prefect_flows.events import record_events
from pytest_prefect_flows.runner import no_events


@task
def step(x: int) -> int:
    return x + 1


@flow
def pipeline(tasks: int) -> int:
    value = 0
    for _ in range(tasks):
        value = step(value)
    emit_event("bench.done", resource={"prefect.resource.id": "bench.pipeline"}, payload={"value": value})
    return value


@contextlib.contextmanager
def off() -> Iterator[None]:
    with no_events():
        yield


@contextlib.contextmanager
def recorded() -> Iterator[None]:
    with no_events(), record_events() as recorder:
        yield
        assert len(recorder.log) > 0


@contextlib.contextmanager
def websocket() -> Iterator[None]:
    from prefect.events.clients import PrefectEventsClient

    with events_client_override(PrefectEventsClient):
        yield


MODES: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "off": off,
    "prefect_events": recorded,
    "websocket": websocket,
}


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=3)
    args = parser.parse_args()
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    with IsolatedBackend() as backend:
        backend.activate()
        for mode in MODES.values():  # warm-up: server start, first worker, imports
            with backend.isolated_test(), mode():
                pipeline(args.tasks)
        for _ in range(args.runs):
            for name, mode in MODES.items():
                with backend.isolated_test():
                    start = time.perf_counter()
                    with mode():
                        pipeline(args.tasks)
                    timings[name].append(time.perf_counter() - start)
    base = statistics.median(timings["off"])
    print(f"{args.runs} rounds of a {args.tasks}-task flow with one emit_event, modes interleaved")
    print(f"machine: {os.cpu_count()} cores, shared with other jobs while measured: expect noise")
    for name, values in timings.items():
        median = statistics.median(values)
        print(
            f"{name:<15} median {median * 1000:7.1f} ms  mean {statistics.mean(values) * 1000:7.1f} ms  "
            f"ratio to off {median / base:5.2f}"
        )


if __name__ == "__main__":
    main()
