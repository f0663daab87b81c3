"""PrefectClock on real flow runs (frozen for flow code, real for the engine) and next_runs."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from time import sleep
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import freezegun.api
import pytest
from prefect import flow, get_run_logger, task
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.events import emit_event
from prefect.schedules import Cron

from pytest_prefect_flows import RunFlow, UsageError
from pytest_prefect_flows.clock import PrefectClock, next_runs

UTC = dt.timezone.utc
NEW_YEAR_2AM = dt.datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
FROZEN_2001 = dt.datetime(2001, 1, 1, tzinfo=UTC).timestamp()
REAL_ASYNCIO_SLEEP, REAL_ANYIO_SLEEP = asyncio.sleep, anyio.sleep


@task
def read_clock() -> tuple[dt.datetime, float]:
    return dt.datetime.now(UTC), time.time()


@task(retries=1, retry_delay_seconds=120)
def stamp(attempts: list[dt.datetime]) -> dt.datetime:
    attempts.append(dt.datetime.now(UTC))
    if len(attempts) == 1:
        raise ConnectionError("first attempt fails")
    return attempts[-1]


@flow
def clock_flow() -> tuple[dt.datetime, float]:
    return read_clock()


@flow
def retrying_stamp() -> dt.datetime:
    return stamp([])


@flow
def nightly() -> None:
    pass


@task
def sleep_in_a_task(seconds: float) -> dt.datetime:
    sleep(seconds)  # imported by name: `from time import sleep`
    return dt.datetime.now(UTC)


async def _async_sleeps() -> dt.datetime:
    await asyncio.sleep(300)
    await anyio.sleep(300)
    return dt.datetime.now(UTC)


@flow
def sleepy_flow() -> list[dt.datetime]:
    seen = [dt.datetime.now(UTC)]
    time.sleep(600)
    seen.append(dt.datetime.now(UTC))
    seen.append(anyio.run(_async_sleeps) - dt.timedelta(seconds=300))
    seen.append(dt.datetime.now(UTC))
    seen.append(sleep_in_a_task(120))
    return seen


@pytest.fixture
def clock(prefect_harness: Any) -> Any:
    prefect_harness.ensure_started()  # the server imports its modules on start: not under a frozen clock
    with PrefectClock() as active:
        yield active


def test_flow_code_sees_frozen_time(run_flow: RunFlow, clock: PrefectClock) -> None:
    clock.freeze("2026-01-01T02:00:00Z")

    run = run_flow(clock_flow)

    assert run.state_name == "Completed"
    assert run.result() == (NEW_YEAR_2AM, NEW_YEAR_2AM.timestamp())


def test_tick_moves_time_for_the_next_run(run_flow: RunFlow, clock: PrefectClock) -> None:
    clock.freeze(NEW_YEAR_2AM)
    assert clock.tick(90) == NEW_YEAR_2AM + dt.timedelta(seconds=90)
    assert clock.tick(dt.timedelta(hours=1)) == NEW_YEAR_2AM + dt.timedelta(hours=1, seconds=90)

    now, timestamp = run_flow(clock_flow).result()

    assert now == clock.now() == NEW_YEAR_2AM + dt.timedelta(hours=1, seconds=90)
    assert timestamp == clock.now().timestamp()


def test_retries_still_work_while_frozen(run_flow: RunFlow, clock: PrefectClock) -> None:
    clock.freeze("2026-01-01T02:00:00Z")

    run = run_flow(retrying_stamp)

    assert run.state_name == "Completed"
    assert run.task("stamp").retry_delays == [120]
    assert run.result() == NEW_YEAR_2AM


async def _loop_times_around_a_sleep_under_a_timeout() -> tuple[float, float]:
    with anyio.fail_after(5):
        before = anyio.current_time()
        await anyio.sleep(0.01)
        return before, anyio.current_time()


def test_engine_sleeps_and_timeouts_stay_real(clock: PrefectClock) -> None:
    clock.freeze("2026-01-01T02:00:00Z")

    before, after = anyio.run(_loop_times_around_a_sleep_under_a_timeout)
    monotonic, perf_counter = time.monotonic(), time.perf_counter()
    time.sleep(0.001)

    assert after > before, "the event loop's clock moved: the engine's sleep was not frozen"
    assert clock.skipped == []
    assert time.monotonic() > monotonic, "the test's own timing is real"
    assert time.perf_counter() > perf_counter


@task
def timed_step() -> tuple[float, float]:
    get_run_logger().info("step ran")
    return time.monotonic(), time.perf_counter()


@flow
def timed_flow() -> tuple[float, float]:
    return timed_step()


def test_records_logs_and_timelines_stay_real_under_a_frozen_clock(
    run_flow: RunFlow, clock: PrefectClock
) -> None:
    clock.freeze("2001-01-01T00:00:00Z")
    before = time.perf_counter()

    run = run_flow(timed_flow)

    real_now = freezegun.api.real_datetime.now(UTC)
    assert time.perf_counter() > before, "the test's perf_counter is real"
    assert run.result() == (FROZEN_2001, FROZEN_2001), "flow code's monotonic clocks are frozen"
    assert all(abs(real_now - entry.timestamp) < dt.timedelta(minutes=1) for entry in run.history)
    assert (run.duration or 0) > 0
    step = run.task("timed_step")
    assert (step.duration or 0) > 0
    assert abs(step.logs[0].created - real_now.timestamp()) < 60, "log times are real"
    assert "+0.000s  0.000s" not in run.timeline()


@task
def announce_in_a_task() -> None:
    emit_event("clock.task.said", resource={"prefect.resource.id": "clock.test"})


@flow
def announcing_flow() -> None:
    emit_event("clock.flow.said", resource={"prefect.resource.id": "clock.test"})
    announce_in_a_task()


def test_user_events_carry_frozen_time_engine_events_real_time(
    run_flow: RunFlow, clock: PrefectClock, prefect_events: Any
) -> None:
    clock.freeze("2001-01-01T00:00:00Z")
    emit_event("clock.test.said", resource={"prefect.resource.id": "clock.test"})
    clock.tick(30)

    run_flow(announcing_flow)

    occurred = {event.event: event.occurred for event in prefect_events.events}
    frozen = dt.datetime(2001, 1, 1, tzinfo=UTC)
    assert occurred["clock.test.said"] == frozen
    assert occurred["clock.flow.said"] == occurred["clock.task.said"] == frozen + dt.timedelta(seconds=30)
    real_now = freezegun.api.real_datetime.now(UTC)
    engine_events = prefect_events.named("prefect.*").events
    assert engine_events, "the engine's own state events were recorded"
    assert all(abs(real_now - event.occurred) < dt.timedelta(minutes=1) for event in engine_events)


def test_events_emitted_with_occurred_keep_it(clock: PrefectClock, prefect_events: Any) -> None:
    clock.freeze("2001-01-01T00:00:00Z")
    emit_event("clock.test.said", resource={"prefect.resource.id": "clock.test"}, occurred=NEW_YEAR_2AM)

    assert [event.occurred for event in prefect_events.events] == [NEW_YEAR_2AM]


def test_skip_sleeps_advances_the_clock_for_flow_code(run_flow: RunFlow, clock: PrefectClock) -> None:
    clock.freeze("2026-01-01T02:00:00Z")
    clock.skip_sleeps()

    run = run_flow(sleepy_flow)

    assert run.state_name == "Completed"
    assert run.result() == [
        NEW_YEAR_2AM + dt.timedelta(seconds=seconds) for seconds in (0, 600, 900, 1200, 1320)
    ]
    assert clock.skipped == [600, 300, 300, 120]
    assert clock.now() == NEW_YEAR_2AM + dt.timedelta(seconds=1320)


def test_skip_sleeps_leaves_sleeps_outside_runs_alone(clock: PrefectClock) -> None:
    clock.skip_sleeps()
    frozen_at = clock.now()

    time.sleep(0.01)

    assert clock.skipped == []
    assert clock.now() == frozen_at
    assert clock.frozen


def test_sleeps_are_real_again_after_the_block() -> None:
    real_sleep = time.sleep
    with PrefectClock() as clock:
        clock.skip_sleeps()
        assert time.sleep is not real_sleep
    assert time.sleep is real_sleep
    assert asyncio.sleep is REAL_ASYNCIO_SLEEP
    assert anyio.sleep is REAL_ANYIO_SLEEP


def test_freeze_again_moves_to_the_new_time(clock: PrefectClock) -> None:
    clock.freeze("2026-01-01T02:00:00Z")
    clock.freeze("2026-06-30T23:59:00+02:00")

    assert dt.datetime.now(UTC) == dt.datetime(2026, 6, 30, 21, 59, tzinfo=UTC)
    assert dt.date.today() == dt.date(2026, 6, 30)


def test_naive_datetime_means_utc(clock: PrefectClock) -> None:
    assert clock.freeze(dt.datetime(2026, 1, 1, 2, 0)) == NEW_YEAR_2AM
    assert dt.datetime.now() == dt.datetime(2026, 1, 1, 2, 0)


def test_leaving_the_block_restores_real_time() -> None:
    with PrefectClock() as clock:
        clock.freeze("2001-01-01T00:00:00Z")
        assert dt.datetime.now(UTC).year == 2001
    assert dt.datetime.now(UTC).year > 2001
    assert abs(time.time() - dt.datetime.now(UTC).timestamp()) < 5
    assert not clock.frozen


def test_now_before_freezing_is_real_time(clock: PrefectClock) -> None:
    assert abs((clock.now() - dt.datetime.now(UTC)).total_seconds()) < 5
    assert repr(clock) == "<PrefectClock real time>"


def test_repr_when_frozen(clock: PrefectClock) -> None:
    clock.freeze("2026-01-01T02:00:00Z")
    assert repr(clock) == "<PrefectClock frozen at 2026-01-01T02:00:00+00:00>"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.tick(5), r"tick\(5\) before the clock was frozen; call prefect_clock.freeze"),
        (lambda c: c.freeze("next tuesday"), r"freeze\('next tuesday'\) is not an ISO 8601 time"),
        (lambda c: c.freeze(1767232800), r"freeze\(\) takes an ISO 8601 string or a datetime, got int"),
        (lambda c: c.freeze("2026-01-01") and c.tick("5"), r"tick\('5'\) takes seconds"),
        (lambda c: c.freeze("2026-01-01") and c.tick(float("nan")), r"tick\(nan\) takes a finite number"),
        (lambda c: c.freeze("2026-01-01") and c.tick(float("-inf")), r"tick\(-inf\) takes a finite number"),
        (
            lambda c: c.freeze("2026-01-01") and c.tick(1e20),
            r"tick\(1e\+20\) is more than a datetime.timedelta",
        ),
        (
            lambda c: c.freeze("2026-01-01") and c.tick(3e11),
            r"tick\(300000000000.0\) moves the clock past 9999",
        ),
    ],
)
def test_bad_input(clock: PrefectClock, call: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call(clock)


def test_next_runs_of_a_daily_2am_cron() -> None:
    runs = next_runs("0 2 * * *", 3, start=dt.datetime(2026, 1, 1, tzinfo=UTC))

    assert runs == [NEW_YEAR_2AM + dt.timedelta(days=day) for day in range(3)]
    assert all(run.tzinfo == ZoneInfo("UTC") for run in runs)


def test_next_runs_starts_at_the_frozen_time(clock: PrefectClock) -> None:
    clock.freeze("2026-01-01T02:00:01Z")

    assert next_runs("0 2 * * *", 1) == [NEW_YEAR_2AM + dt.timedelta(days=1)]


def test_next_runs_in_the_schedules_timezone() -> None:
    berlin = ZoneInfo("Europe/Berlin")

    runs = next_runs(
        Cron("0 2 * * *", timezone="Europe/Berlin"), 2, start=dt.datetime(2026, 1, 1, tzinfo=UTC)
    )

    assert runs == [
        dt.datetime(2026, 1, 1, 2, 0, tzinfo=berlin),
        dt.datetime(2026, 1, 2, 2, 0, tzinfo=berlin),
    ]
    assert [run.tzinfo for run in runs] == [berlin, berlin]
    assert runs[0] == NEW_YEAR_2AM - dt.timedelta(hours=1)


def test_next_runs_timezone_argument_for_strings() -> None:
    runs = next_runs(
        "30 8 * * 1-5", 2, start=dt.datetime(2026, 1, 2, tzinfo=UTC), timezone="America/New_York"
    )

    new_york = ZoneInfo("America/New_York")
    assert runs == [
        dt.datetime(2026, 1, 2, 8, 30, tzinfo=new_york),
        dt.datetime(2026, 1, 5, 8, 30, tzinfo=new_york),
    ]


@pytest.mark.parametrize("interval", [900, 900.0, dt.timedelta(minutes=15)])
def test_next_runs_of_an_interval(interval: Any) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)

    assert next_runs(interval, 3, start=start) == [start + dt.timedelta(minutes=15 * k) for k in range(3)]


def test_next_runs_of_prefect_schedule_objects() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    anchor = dt.datetime(2025, 12, 31, 23, 45, tzinfo=UTC)

    assert next_runs(CronSchedule(cron="0 */6 * * *"), 2, start=start) == [
        start,
        start + dt.timedelta(hours=6),
    ]
    assert next_runs(
        IntervalSchedule(interval=dt.timedelta(hours=1), anchor_date=anchor), 1, start=start
    ) == [dt.datetime(2026, 1, 1, 0, 45, tzinfo=UTC)]
    assert next_runs("RRULE:FREQ=DAILY;BYHOUR=2;BYMINUTE=0;BYSECOND=0", 1, start=start) == [NEW_YEAR_2AM]


def test_next_runs_of_a_deployment_merges_its_schedules() -> None:
    deployment = nightly.to_deployment("nightly", cron="0 2 * * *")
    twice = nightly.to_deployment("twice", schedules=[Cron("0 2 * * *"), Cron("0 14 * * *")])
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)

    assert next_runs(deployment, 2, start=start) == [NEW_YEAR_2AM, NEW_YEAR_2AM + dt.timedelta(days=1)]
    assert next_runs(twice, 3, start=start) == [
        NEW_YEAR_2AM,
        NEW_YEAR_2AM + dt.timedelta(hours=12),
        NEW_YEAR_2AM + dt.timedelta(days=1),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0 2 * *", 3), r"next_runs\('0 2 \* \*', \.\.\.\): not a valid schedule"),
        (("0 2 * * *", 0), r"n=0\): n is how many fire times to list, a positive integer"),
        ((-60, 1), r"next_runs\(-60, \.\.\.\): an interval must be positive"),
        ((nightly, 1), r"got the flow 'nightly', which has no schedule.*nightly.to_deployment"),
        (([1, 2], 1), r"takes a cron string, an interval .* got list \[1, 2\]"),
    ],
)
def test_next_runs_bad_input(args: tuple[Any, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        next_runs(*args)


def test_next_runs_deployment_without_schedule() -> None:
    with pytest.raises(UsageError, match=r"deployment 'adhoc' has no schedule"):
        next_runs(nightly.to_deployment("adhoc"), 1)


def test_next_runs_bad_timezone() -> None:
    with pytest.raises(UsageError, match=r"timezone=.Mars/Olympus.\) is not an IANA timezone"):
        next_runs("0 2 * * *", 1, timezone="Mars/Olympus")
