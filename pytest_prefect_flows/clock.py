"""Control the time flow code sees (freezegun), and list a schedule's fire times.

`PrefectClock` (the `prefect_clock` fixture) freezes `datetime.now()`, `date.today()`, `time.time()`
and friends at a chosen instant and moves them only when told (`.tick()`), for the test's and the
flows' code, while the engine and the in-process backend keep real time. How:

* freezegun's `ignore=` list holds Prefect and every library under the engine and the API server
  (anyio, asyncio, httpx, uvicorn, SQLAlchemy, ...): their module-level time functions stay real;
* while frozen, `_clock_policy.ClockPolicy` decides per caller: the engine (those modules and the
  standard library) reads real time from every clock, so state timestamps, log times, timelines and
  report durations stay real; other code reads frozen wall-clock time; `time.monotonic()` and
  `time.perf_counter()` are frozen only for flow and task code, so the test's own timing is real;
  an `emit_event(...)` called by the test, a flow or a task is stamped with the frozen time, while
  the engine's own events keep real time;
* asyncio event loops keep real monotonic time (`real_asyncio=True`);
* a module imported while time is frozen binds freezegun's `FakeDatetime` where it says
  `from datetime import datetime`, and pydantic cannot build a schema for that class (Prefect imports
  many modules lazily, the API server's on its first request): `FakeDatetime`/`FakeDate` are taught to
  validate as `datetime`/`date`. The `prefect_clock` fixture also starts the backend before yielding.

`skip_sleeps()`: `time.sleep`, `asyncio.sleep` and `anyio.sleep` called by flow and task code advance
the frozen clock instead of waiting (a poll loop of 10 minutes runs in milliseconds and sees the right
times); the engine's sleeps stay real. Retry waits are not affected (fast retries record them).

Works without pytest::

    with PrefectClock() as clock:
        clock.freeze("2026-01-01T02:00:00Z")
        my_flow()
        clock.tick(3600)

`next_runs(schedule_or_cron, n, start=None)` lists the next fire times of a cron string, an interval,
a Prefect schedule, or the schedules of `flow.to_deployment(name, cron=...)`, in the schedule's
timezone.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import freezegun
import freezegun.api

from pytest_prefect_flows._clock_policy import ClockPolicy, SleepSkipper
from pytest_prefect_flows._compat import build_prefect_datetime_schemas_from_real_datetime
from pytest_prefect_flows.exceptions import UsageError

# Modules whose own calls keep real time: the engine, the API server and what they run on.
ENGINE_MODULES = (
    "prefect",
    "pytest_prefect_flows",
    "anyio",
    "asyncio",
    "concurrent",
    "sniffio",
    "httpx",
    "httpcore",
    "h11",
    "h2",
    "websockets",
    "uvicorn",
    "starlette",
    "fastapi",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "alembic",
    "pydantic",
    "pydantic_core",
    "pendulum",
    "whenever",
    "opentelemetry",
    "cachetools",
    "_pytest",
    "pluggy",
    "respx",
)


class PrefectClock:
    """Freeze and move the time flow code sees; a context manager that works without pytest.

    Time is real until `.freeze(when)`; leaving the block restores real time.
    """

    def __init__(self, *, ignore: tuple[str, ...] = ()) -> None:
        """`ignore`: more module prefixes whose own time calls stay real (added to `ENGINE_MODULES`)."""
        self.ignore = (*ENGINE_MODULES, *ignore)
        self._freezer: Any = None
        self._factory: Any = None
        self._policy = ClockPolicy(self.ignore, self.now)
        self._sleeps: SleepSkipper | None = None
        self._skipped_earlier: list[float] = []

    @property
    def frozen(self) -> bool:
        return self._factory is not None

    def freeze(self, when: str | dt.datetime) -> dt.datetime:
        """Stop time at `when` (ISO 8601 string or datetime; naive means UTC); returns it, in UTC."""
        instant = _parse_instant(when)
        if self._factory is not None:
            self._factory.move_to(instant)
            return instant
        _teach_pydantic_fake_datetimes()
        build_prefect_datetime_schemas_from_real_datetime()
        self._freezer = freezegun.freeze_time(instant, ignore=list(self.ignore), real_asyncio=True)
        self._factory = self._freezer.start()
        self._policy.install()
        return instant

    def skip_sleeps(self) -> PrefectClock:
        """Sleeps in flow and task code (`time.sleep`, `asyncio.sleep`, `anyio.sleep`) advance the
        frozen clock instead of waiting; freezes the clock at the current time if it is not frozen.

        `.skipped` lists the seconds each skipped sleep asked for. Returns the clock.
        """
        if self._factory is None:
            self.freeze(dt.datetime.now(dt.timezone.utc))
        if self._sleeps is None:
            self._sleeps = SleepSkipper(self._policy, self.tick)
            self._sleeps.start()
        return self

    @property
    def skipped(self) -> list[float]:
        """Seconds asked for by each sleep that `skip_sleeps()` skipped, in order."""
        return self._skipped_earlier + (self._sleeps.skipped if self._sleeps is not None else [])

    def tick(self, seconds: float | dt.timedelta = 1.0) -> dt.datetime:
        """Move frozen time forward by `seconds` (or a timedelta); returns the new time, in UTC."""
        if self._factory is None:
            raise UsageError(
                f"prefect_clock.tick({seconds!r}) before the clock was frozen; call "
                "prefect_clock.freeze('2026-01-01T02:00:00Z') first."
            )
        delta = seconds if isinstance(seconds, dt.timedelta) else _seconds(seconds)
        try:
            self.now() + delta
        except OverflowError:
            raise UsageError(
                f"tick({seconds!r}) moves the clock past {dt.datetime.max.year} (or before year 1), "
                f"which Python's datetime cannot hold; it is now {self.now().isoformat()}."
            ) from None
        self._factory.tick(delta)
        return self.now()

    def now(self) -> dt.datetime:
        """The time flow code sees now, timezone-aware in UTC (real time when not frozen)."""
        if self._factory is None:
            return dt.datetime.now(dt.timezone.utc)
        frozen: dt.datetime = self._factory()
        return _plain(frozen.replace(tzinfo=dt.timezone.utc))

    def unfreeze(self) -> None:
        """Let time run for real again."""
        if self._sleeps is not None:
            self._sleeps.stop()
            self._skipped_earlier += self._sleeps.skipped
            self._sleeps = None
        if self._freezer is None:
            return
        self._policy.uninstall()
        self._freezer.stop()
        self._freezer = self._factory = None

    def __enter__(self) -> PrefectClock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.unfreeze()

    def __repr__(self) -> str:
        return f"<PrefectClock {'frozen at ' + self.now().isoformat() if self.frozen else 'real time'}>"


def _teach_pydantic_fake_datetimes() -> None:
    """Let pydantic models defined while frozen (`x: datetime` bound to FakeDatetime) build schemas."""
    for fake, real in ((freezegun.api.FakeDatetime, dt.datetime), (freezegun.api.FakeDate, dt.date)):
        if "__get_pydantic_core_schema__" not in vars(fake):
            fake.__get_pydantic_core_schema__ = classmethod(  # type: ignore[attr-defined]
                lambda cls, source, handler, real=real: handler.generate_schema(real)
            )


def _seconds(seconds: Any) -> dt.timedelta:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise UsageError(f"tick({seconds!r}) takes seconds (a number) or a datetime.timedelta.")
    if not math.isfinite(seconds):
        raise UsageError(
            f"tick({seconds!r}) takes a finite number of seconds; nan and infinities are refused."
        )
    try:
        return dt.timedelta(seconds=seconds)
    except OverflowError:
        raise UsageError(
            f"tick({seconds!r}) is more than a datetime.timedelta holds ({dt.timedelta.max.days} days)."
        ) from None


def _parse_instant(when: Any) -> dt.datetime:
    if isinstance(when, dt.datetime):
        instant = when
    elif isinstance(when, str):
        try:
            instant = dt.datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"freeze({when!r}) is not an ISO 8601 time; use e.g. '2026-01-01T02:00:00Z'."
            ) from None
    else:
        raise UsageError(
            f"freeze() takes an ISO 8601 string or a datetime, got {type(when).__name__} {when!r}."
        )
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.timezone.utc)
    return _plain(instant.astimezone(dt.timezone.utc))


def _plain(value: dt.datetime) -> dt.datetime:
    """A real `datetime` (not freezegun's or pendulum's subclass) with the same instant and tzinfo."""
    return freezegun.api.real_datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=value.tzinfo,
        fold=value.fold,
    )


def next_runs(
    schedule_or_cron: Any, n: int, start: dt.datetime | None = None, *, timezone: str | None = None
) -> list[dt.datetime]:
    """The next `n` fire times, on or after `start` (default: now, frozen if `prefect_clock` froze it).

    Takes a cron string (`"0 2 * * *"`), an `RRULE:` string, an interval (`timedelta` or seconds), a
    Prefect schedule (`prefect.schedules.Cron(...)`, `CronSchedule`, `IntervalSchedule`,
    `RRuleSchedule`, a deployment schedule), or a deployment from `flow.to_deployment(name, cron=...)`
    (all its schedules, merged). Times are in the schedule's timezone (`timezone=` for strings and
    intervals; default UTC). A naive `start` is read in that timezone.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"next_runs(..., n={n!r}): n is how many fire times to list, a positive integer.")
    if start is not None and not isinstance(start, dt.datetime):
        raise UsageError(f"next_runs(..., start={start!r}) takes a datetime.")
    schedules = _server_schedules(schedule_or_cron, start, timezone)
    begin = start or _clock_now()
    fire_times: list[dt.datetime] = []
    for schedule in schedules:
        fire_times += [_in_timezone(when, schedule.timezone) for when in _dates(schedule, n, begin)]
    return sorted(fire_times)[:n]


def _clock_now() -> dt.datetime:
    """Now as flow code sees it: the frozen time while a `PrefectClock` is frozen."""
    if freezegun.api.freeze_factories:
        return _plain(freezegun.api.get_current_time().replace(tzinfo=dt.timezone.utc))
    return dt.datetime.now(dt.timezone.utc)


def _dates(schedule: Any, n: int, start: dt.datetime) -> list[dt.datetime]:
    from prefect.utilities.asyncutils import run_coro_as_sync

    return list(run_coro_as_sync(schedule.get_dates(n=n, start=start)) or [])


def _in_timezone(when: dt.datetime, timezone: str | None) -> dt.datetime:
    return _plain(when.astimezone(ZoneInfo(timezone or "UTC")))


def _server_schedules(value: Any, start: dt.datetime | None, timezone: str | None) -> list[Any]:
    """Prefect's server-side schedule models (the ones that compute dates) for what the user passed."""
    from prefect.server.schemas import schedules as server

    _check_timezone(timezone)
    tz = timezone or "UTC"
    if isinstance(value, str):
        kind = server.RRuleSchedule if value.strip().upper().startswith(("RRULE", "DTSTART")) else None
        if kind is not None:
            return [_validated(kind, {"rrule": value, "timezone": tz}, value)]
        return [_validated(server.CronSchedule, {"cron": value, "timezone": tz}, value)]
    if isinstance(value, (dt.timedelta, int, float)) and not isinstance(value, bool):
        interval = value if isinstance(value, dt.timedelta) else dt.timedelta(seconds=value)
        if interval <= dt.timedelta(0):
            raise UsageError(f"next_runs({value!r}, ...): an interval must be positive.")
        anchor = start or _clock_now()
        return [
            _validated(
                server.IntervalSchedule, {"interval": interval, "anchor_date": anchor, "timezone": tz}, value
            )
        ]
    return _schedules_of(value)


def _schedules_of(value: Any) -> list[Any]:
    from prefect import Flow
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
    from prefect.schedules import Schedule
    from prefect.server.schemas import schedules as server

    if isinstance(value, (server.CronSchedule, server.IntervalSchedule, server.RRuleSchedule)):
        return [value]
    if isinstance(value, (CronSchedule, IntervalSchedule, RRuleSchedule)):
        kind = getattr(server, type(value).__name__)
        return [_validated(kind, value.model_dump(exclude_none=True), value)]
    if isinstance(value, Schedule):
        from prefect.client.schemas.actions import DeploymentScheduleCreate

        return _schedules_of(DeploymentScheduleCreate.from_schedule(value).schedule)
    if hasattr(value, "schedule") and not isinstance(value, Flow):  # a deployment schedule
        return _schedules_of(value.schedule)
    if isinstance(getattr(value, "schedules", None), list):  # a deployment
        if not value.schedules:
            raise UsageError(
                f"The deployment {getattr(value, 'name', value)!r} has no schedule; create it with "
                "flow.to_deployment(name, cron=...) (or interval=, rrule=, schedules=)."
            )
        return [schedule for item in value.schedules for schedule in _schedules_of(item)]
    if isinstance(value, Flow):
        raise UsageError(
            f"next_runs() got the flow {value.name!r}, which has no schedule of its own; pass "
            f"{value.fn.__name__}.to_deployment('name', cron='0 2 * * *') or the cron string."
        )
    raise UsageError(
        f"next_runs() takes a cron string, an interval (timedelta or seconds), a Prefect schedule or a "
        f"deployment from flow.to_deployment(...), got {type(value).__name__} {value!r}."
    )


def _validated(kind: Any, fields: dict[str, Any], passed: Any) -> Any:
    from pydantic import ValidationError

    try:
        return kind.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        raise UsageError(f"next_runs({passed!r}, ...): not a valid schedule: {problems}") from None


def _check_timezone(timezone: str | None) -> None:
    if timezone is None:
        return
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"next_runs(..., timezone={timezone!r}) is not an IANA timezone; use e.g. 'Europe/Berlin'."
        ) from None
