"""The sweep itself: a clean run, then one scenario per fault point. Works without pytest::

    report = FaultSweep()(etl, db, setup=lambda: reset(db), observe=lambda: rows(db))
    report.assert_recovered()

A scenario starts from `setup()` (a function, or one returning a context manager to run inside),
with an empty result cache, runs the flow with the fault, then, while the run did not complete and
`rerun` is on, runs it again (sharing the cache, as an immediate re-run would), and compares
`observe()` (the final run's result when there is no `observe`) with the clean run's. The task's own
retries happen inside the fault run: a fault after the body of a task with `retries` is followed by
Prefect running the body again, the usual way a write happens twice. Retry waits are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from pytest_prefect_flows.exceptions import FaultSweepError, UsageError
from pytest_prefect_flows.idempotency import (
    _Check,
    _check_scope,
    _equal,
    _indent,
    _observe,
    _snapshot,
    _Target,
)
from pytest_prefect_flows.recording import FlowRunRecord
from pytest_prefect_flows.sweep.points import MODES, FaultPoint, Mode, PointLocator, fault_points
from pytest_prefect_flows.sweep.report import Check, Fault, SweepPoint, SweepReport, describe_difference

HELPER = "fault_sweep"


class Scenarios:
    """Runs a flow from `setup()` with faults injected, and judges the outcome against a baseline."""

    def __init__(
        self,
        check: _Check,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        rerun: bool,
        judge: Check | None,
    ) -> None:
        self.check = check
        self.args = args
        self.kwargs = kwargs
        self.rerun = rerun
        self.judge = judge
        self.runs = 0

    def clean(self) -> tuple[FlowRunRecord, Any]:
        """The clean run from `setup()` and what `observe()` saw after it."""
        with self.check.scenario():
            record = self._run(fresh_cache=True)
            return record, self._observation(record)

    def faulty(self, faults: tuple[Fault, ...], baseline: Any) -> SweepPoint:
        """One scenario: the faults, reruns while the run did not complete, the verdict."""
        from pytest_prefect_flows.faults import FaultInjector

        locator = PointLocator()
        with self.check.scenario():
            with FaultInjector(check_unused=False) as injector:
                specs = [locator.inject(injector, fault.point, fault.mode, fault.times) for fault in faults]
                runs = [self._run(fresh_cache=True)]
                unfired = [fault for fault, spec in zip(faults, specs, strict=True) if spec.fired == 0]
                firings = sum(fault.times for fault in faults)
                while self.rerun and not _completed(runs[-1]) and len(runs) <= firings:
                    locator.new_run()
                    runs.append(self._run(fresh_cache=False))
            observed = self._observation(runs[-1])
        point = SweepPoint(
            faults,
            runs[0].state_name,
            runs[-1].state_name if len(runs) > 1 else None,
            observed,
            matched=False,
            runs=runs,
        )
        self._judge(point, baseline, unfired if len(faults) == 1 else [])
        return point

    def _judge(self, point: SweepPoint, baseline: Any, unfired: list[Fault]) -> None:
        final = point.runs[-1]
        point.details = _timelines(point.runs)
        if unfired:
            point.problem = (
                f"the fault never fired: {unfired[0].point.label} did not run in this scenario though it "
                "ran in the clean run; check that setup() restores the clean run's starting state"
            )
            return
        point.matched, reason = self._matches(baseline, point.observation)
        if self.rerun and not _completed(final):
            exception = final.exception
            point.problem = f"the rerun did not complete ({final.state_name}: {exception!r})"
        elif not point.matched:
            summary, details = describe_difference(baseline, point.observation)
            point.problem = reason or summary
            point.details = [*_recovery(point), *details, *point.details]

    def _matches(self, baseline: Any, observed: Any) -> tuple[bool, str | None]:
        if self.judge is None:
            return _equal(baseline, observed), None
        try:
            return bool(self.judge(baseline, observed)), None
        except AssertionError as exc:
            return False, f"check(baseline, observed) failed: {exc}"

    def _run(self, fresh_cache: bool) -> FlowRunRecord:
        self.runs += 1
        return self.check.run(self.args, self.kwargs, fresh_cache=fresh_cache)

    def _observation(self, record: FlowRunRecord) -> Any:
        if self.check.observe is not None:
            return _observe(self.check.observe)
        return _snapshot(record.result(raise_on_failure=False)) if _completed(record) else None


def _completed(record: FlowRunRecord) -> bool:
    return record.state_type == "COMPLETED"


def _recovery(point: SweepPoint) -> list[str]:
    """Who ran the work again after the fault, which is usually who wrote twice."""
    first = point.runs[0]
    retried = [
        fault.point.label
        for fault in point.faults
        if any(run.attempts > 1 for run in first.find_tasks(fault.point.task))
    ]
    if _completed(first) and retried:
        return [f"Prefect retried {', '.join(retried)} inside the fault run (the task's retries)."]
    if len(point.runs) > 1:
        return [f"The flow was run again after the fault run ended {first.state_name}."]
    return []


def _timelines(runs: list[FlowRunRecord]) -> list[str]:
    labels = ["Fault run:", *(f"Rerun {number}:" for number in range(1, len(runs)))]
    if len(runs) == 2:
        labels[1] = "Rerun:"
    return [
        line
        for label, run in zip(labels, runs, strict=True)
        for line in [label, *_indent(run.timeline().splitlines())]
    ]


class FaultSweep:
    """`fault_sweep(flow, *args, setup=..., observe=..., **kwargs) -> SweepReport`.

    `on_report` is told about every report (the pytest fixture shows them under `-v` and in the HTML
    report).
    """

    def __init__(self, on_report: Callable[[SweepReport], None] | None = None) -> None:
        self.on_report = on_report

    def __call__(
        self,
        flow: Any,
        *args: Any,
        setup: Callable[[], Any] | None = None,
        observe: Callable[[], Any] | None = None,
        modes: Iterable[Mode] = ("before", "after"),
        rerun: bool = True,
        max_points: int | None = None,
        check: Check | None = None,
        faults: Any = None,
        settings: Any = None,
        max_shrinks: int | None = 30,
        **kwargs: Any,
    ) -> SweepReport:
        """Sweep one fault over every task run of `flow(*args, **kwargs)`; see the module docs.

        `faults=N` (or a strategy of `FailurePlan`s) searches schedules of up to N faults with
        hypothesis instead, shrinking a failure to the smallest schedule (`settings`: hypothesis
        settings; shrinking stops `max_shrinks` examples after the first failure); arguments given as
        hypothesis strategies are drawn per example.
        """
        target = _Target(flow, HELPER)
        for name, value in (("setup", setup), ("observe", observe)):
            _require_function(name, value)
        if check is not None and not callable(check):
            raise UsageError(
                f"{HELPER}(check={check!r}) takes a function of (baseline, observed) that returns whether "
                "the observation is acceptable, e.g. `check=lambda clean, seen: set(seen) == set(clean)`."
            )
        chosen = _modes(modes)
        limit = _max_points(max_points)
        started = time.perf_counter()
        with _check_scope() as cache:
            check_ = _Check(target, observe, setup, cache)
            if faults is not None:
                from pytest_prefect_flows.sweep.schedules import search

                report = search(check_, args, kwargs, rerun, check, chosen, faults, settings, max_shrinks)
            else:
                _refuse_strategies(args, kwargs)
                report = self._sweep(Scenarios(check_, args, kwargs, rerun, check), target, chosen, limit)
        report.seconds = time.perf_counter() - started
        if self.on_report is not None:
            self.on_report(report)
        return report

    def _sweep(
        self, scenarios: Scenarios, target: _Target, modes: tuple[Mode, ...], limit: int | None
    ) -> SweepReport:
        clean, baseline = scenarios.clean()
        points = require_points(target, clean)
        faults = [Fault(point, mode) for point in points for mode in modes]
        chosen = faults if limit is None else faults[:limit]
        results = [scenarios.faulty((fault,), baseline) for fault in chosen]
        return SweepReport(
            target.name, baseline, results, 0.0, scenarios.runs, skipped=len(faults) - len(chosen)
        )


def require_points(target: _Target, clean: FlowRunRecord) -> list[FaultPoint]:
    """The clean run's fault points; it must have completed and run some task."""
    if not _completed(clean):
        raise FaultSweepError(
            f"The clean run of {target.label} did not complete ({clean.state_name}: {clean.exception!r}); "
            f"{HELPER} compares every fault with a clean run, so the flow must complete without faults "
            "first. Check the arguments and setup().\n" + clean.timeline()
        )
    points = fault_points(clean)
    if not points:
        raise UsageError(
            f"The clean run of {target.label} ran no tasks: there is nothing to inject a fault into."
        )
    return points


def _require_function(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        what = (
            "restores the starting state before each run (it may return a context manager)"
            if name == "setup"
            else "returns a snapshot of the side effects, e.g. `observe=lambda: read_rows(db)`"
        )
        raise UsageError(f"{HELPER}({name}={value!r}) takes a function with no arguments that {what}.")


def _modes(modes: Any) -> tuple[Mode, ...]:
    chosen = (modes,) if isinstance(modes, str) else tuple(modes)
    if not chosen or any(mode not in MODES for mode in chosen):
        raise UsageError(
            f"{HELPER}(modes={modes!r}) takes some of {MODES!r}: 'before' raises before the task's body, "
            "'after' lets the body run then fails the task, 'crash' crashes the run."
        )
    return tuple(dict.fromkeys(chosen))


def _max_points(max_points: Any) -> int | None:
    if max_points is None:
        return None
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise UsageError(
            f"{HELPER}(max_points={max_points!r}) takes how many points (task run and mode) to sweep at "
            "most, a positive integer, or None for all of them."
        )
    return max_points


def _refuse_strategies(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    from pytest_prefect_flows.sweep.schedules import is_strategy

    drawn = [repr(value) for value in [*args, *kwargs.values()] if is_strategy(value)]
    if drawn:
        raise UsageError(
            f"{HELPER}() got a hypothesis strategy as a flow argument ({drawn[0]}); strategies are drawn "
            "only in the schedule search: pass faults=2 (or a strategy of failure plans) as well, or pass "
            "a plain value."
        )
