"""The schedule search: hypothesis draws schedules of several faults and shrinks a failure.

`fault_sweep(flow, ..., faults=2)` draws, per example, up to two faults at distinct points of the
clean run (a task run and a mode each); all of them are armed for the fault run and each fires the
first time its task run is reached, in the fault run or in a rerun, so a schedule covers a fault
that Prefect's retry runs into as well as a second failure during the operator's rerun. Reruns go
on while a run fails, one more than the faults can fire. `faults=` also takes a strategy drawing
`FailurePlan`s (`strategies.failure_plans(...)`, by task name). Flow arguments given as strategies
(`strategies.records(...)`, `st.integers()`) are drawn per example, with the clean run redone for
each new input. The failure hypothesis reports after shrinking is the smallest failing schedule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.exceptions import FaultSweepError, UsageError
from pytest_prefect_flows.idempotency import (
    _Check,
    _database_key,
    _settings,
    _ShrinkBudget,
    _ShrinkBudgetSpent,
)
from pytest_prefect_flows.sweep.engine import HELPER, Scenarios, require_points
from pytest_prefect_flows.sweep.points import MODES, FaultPoint, Mode, parameters_key
from pytest_prefect_flows.sweep.report import Check, Fault, SweepPoint, SweepReport

if TYPE_CHECKING:
    from hypothesis.strategies import DataObject, SearchStrategy


def is_strategy(value: Any) -> bool:
    from hypothesis.strategies import SearchStrategy

    return isinstance(value, SearchStrategy)


class _ScheduleFailed(FaultSweepError):
    """Raised inside hypothesis for a failing schedule; carries the point."""

    def __init__(self, point: SweepPoint) -> None:
        super().__init__(f"{point.label}: {point.problem}")
        self.point = point


def schedules(
    points: list[FaultPoint], modes: tuple[Mode, ...], size: int
) -> SearchStrategy[tuple[Fault, ...]]:
    """Up to `size` faults at distinct points; shrinks to fewer faults, earlier points, the first mode."""
    from hypothesis import strategies as st

    fault = st.builds(Fault, st.sampled_from(points), st.sampled_from(modes))
    return st.lists(fault, min_size=1, max_size=size, unique_by=lambda f: f.point).map(tuple)


def as_faults(drawn: Any) -> tuple[Fault, ...]:
    """A drawn `FailurePlan` (faults by task name, any run of it) or faults, as a schedule."""
    from pytest_prefect_flows.strategies import FailurePlan

    if isinstance(drawn, FailurePlan):
        return tuple(Fault(FaultPoint(planned.task, 0), planned.where, planned.times) for planned in drawn)
    if isinstance(drawn, (list, tuple)) and all(isinstance(item, Fault) for item in drawn):
        return tuple(drawn)
    raise UsageError(
        f"{HELPER}(faults=...) drew {drawn!r}; a strategy passed as faults= must draw FailurePlans "
        "(pytest_prefect_flows.strategies.failure_plans(...)); or pass faults=N for schedules of up to "
        "N faults."
    )


def _fault_strategy(faults: Any) -> int | SearchStrategy[Any]:
    if is_strategy(faults):
        return faults  # type: ignore[no-any-return]
    if isinstance(faults, bool) or not isinstance(faults, int) or faults < 1:
        raise UsageError(
            f"{HELPER}(faults={faults!r}) takes how many faults a schedule holds at most (an integer >= 1, "
            "e.g. faults=2) or a hypothesis strategy of failure plans (strategies.failure_plans(...))."
        )
    return faults


def _size(schedule: tuple[Fault, ...], points: list[FaultPoint], inputs: str) -> int:
    """Smaller for a smaller input, then fewer faults, then earlier points and modes."""
    tasks = [point.task for point in points]
    ranks = sum(
        (points.index(fault.point) if fault.point in points else tasks.index(fault.point.task)) * len(MODES)
        + MODES.index(fault.mode)
        for fault in schedule
    )
    return len(inputs) * 10**6 + len(schedule) * 10**4 + ranks


def _search_settings(chosen: Any) -> Any:
    """check_idempotent's settings; flow runs between draws are not slow input generation."""
    from hypothesis import HealthCheck, settings as Settings

    base = _settings(chosen)
    return Settings(base, suppress_health_check=[*base.suppress_health_check, HealthCheck.too_slow])


def _shrinks(max_shrinks: Any) -> int | None:
    if max_shrinks is None or (
        isinstance(max_shrinks, int) and not isinstance(max_shrinks, bool) and max_shrinks >= 0
    ):
        return max_shrinks
    raise UsageError(
        f"{HELPER}(max_shrinks={max_shrinks!r}) takes how many schedules to try while shrinking a failure, "
        "an integer >= 0 (or None for hypothesis's own limits)."
    )


def search(
    check: _Check,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    rerun: bool,
    judge: Check | None,
    modes: tuple[Mode, ...],
    faults: Any,
    settings: Any,
    max_shrinks: int | None,
) -> SweepReport:
    """Run hypothesis over schedules (and drawn inputs); the report holds the failure, if any.

    Shrinking tries at most `max_shrinks` examples after the first failure (each is a few flow runs).
    """
    from hypothesis import given, strategies as st

    chosen = _fault_strategy(faults)
    budget = _ShrinkBudget(_shrinks(max_shrinks))
    baselines: dict[str, tuple[list[FaultPoint], Any]] = {}
    passed: dict[str, SweepPoint] = {}
    counts = {"runs": 0, "examples": 0}

    def example(data: DataObject) -> None:
        drawn_args = tuple(data.draw(arg) if is_strategy(arg) else arg for arg in args)
        drawn_kwargs = {
            name: data.draw(value, label=name) if is_strategy(value) else value
            for name, value in kwargs.items()
        }
        scenarios = Scenarios(check, drawn_args, drawn_kwargs, rerun, judge)
        inputs = parameters_key({"args": drawn_args, **drawn_kwargs})
        if inputs not in baselines:
            clean, baseline = scenarios.clean()
            baselines[inputs] = (require_points(check.target, clean), baseline)
        points, baseline = baselines[inputs]
        strategy = schedules(points, modes, chosen) if isinstance(chosen, int) else chosen
        schedule = as_faults(data.draw(strategy, label="schedule"))
        budget.check()  # after every draw: hypothesis replays draws, and would call fewer of them flaky
        point = scenarios.faulty(schedule, baseline)
        if drawn_args != args or drawn_kwargs != kwargs:
            point.details.insert(0, f"Input (drawn): {inputs}")
        counts["runs"] += scenarios.runs
        counts["examples"] += 1
        if not point.passed:
            failure = _ScheduleFailed(point)
            budget.failed(failure, _size(schedule, points, inputs))
            raise failure
        passed.setdefault(point.label, point)

    example.__name__ = example.__qualname__ = f"fault_schedules_of_{check.target.name}".replace("-", "_")
    example._hypothesis_internal_add_digest = _database_key(check.target)  # type: ignore[attr-defined]
    try:
        _search_settings(settings)(given(st.data())(example))()
    except _ScheduleFailed as failure:
        points = [failure.point]
    except _ShrinkBudgetSpent:
        assert isinstance(budget.best, _ScheduleFailed)
        points = [budget.best.point]
        points[0].details.append(
            f"(Shrinking stopped after {budget.spent} more schedules, max_shrinks={budget.limit}: "
            "this is the "
            "smallest failing one found; max_shrinks=None shrinks further.)"
        )
    else:
        points = list(passed.values())
    baseline = next(iter(baselines.values()))[1] if len(baselines) == 1 else None
    return SweepReport(check.target.name, baseline, points, 0.0, counts["runs"], examples=counts["examples"])
