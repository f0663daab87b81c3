"""Idempotency and retry-safety checks for flows and tasks. Works without pytest.

`observe` is a function returning a snapshot of the side effects, e.g. the destination's rows; it is
called after each run and compared, with the run's result, against the reference run. `reset` is
called before each scenario (the reference run and every injection point each start from it); when
it returns a context manager, the scenario runs inside it, so fresh state can be built and torn
down per scenario or per hypothesis example::

    assert_idempotent(load, rows, observe=lambda: fetch_rows(db))
    assert_retry_safe(etl, db_path, observe=lambda: fetch_rows(db), reset=lambda: truncate(db))
    check_idempotent(transform, records({"id": int, "amount": float}), observe=...)

Under pytest the plugin's isolated backend runs the flows; elsewhere run the checks inside
`with IsolatedBackend(): ...`. Retry waits are skipped (`fast_retries()`) during a check.

A task is checked by calling it inside an ad-hoc flow named `check-<task name>` that returns the
task's result. Every run gets the same argument objects, as Prefect's own retries do, so a task
that mutates its input is caught.

Cached results: each compared run (each of `assert_idempotent`'s runs, the clean run and each
injection point of `assert_retry_safe`) starts with an empty result cache (a temporary
`PREFECT_LOCAL_STORAGE_PATH`), so a task with a `cache_policy` really runs its body: a cache may
expire or be cleared, and idempotency must not depend on it. A re-run after an injected failure
shares the cache of the run it recovers, as an immediate production re-run would. Result storage
other than the default local one is not redirected.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import datetime as dt
import difflib
import inspect
import os
import pprint
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_prefect_flows.exceptions import IdempotencyError, UsageError
from pytest_prefect_flows.recording import FlowRunRecord, record_runs

if TYPE_CHECKING:
    from hypothesis import settings as HypothesisSettings
    from hypothesis.strategies import SearchStrategy

__all__ = ["assert_idempotent", "assert_retry_safe", "check_idempotent"]

Observe = Callable[[], Any]
Reset = Callable[[], Any]

# hypothesis's own default; a flow run takes longer, so it is lifted unless a profile chose another.
_HYPOTHESIS_DEFAULT_DEADLINE = dt.timedelta(milliseconds=200)


# ---------------------------------------------------------------------------------------------
# What is checked: a flow, or a task called inside an ad-hoc flow


class _Target:
    def __init__(self, flow_or_task: Any, helper: str) -> None:
        from prefect import Flow, Task

        if isinstance(flow_or_task, Flow):
            self.kind = "flow"
        elif isinstance(flow_or_task, Task):
            self.kind = "task"
        else:
            what = (
                f"function {flow_or_task.__name__!r}"
                if inspect.isfunction(flow_or_task)
                else repr(flow_or_task)
            )
            raise UsageError(
                f"{helper}() takes a @flow or a @task, got {what} ({type(flow_or_task).__name__}). "
                "Decorate it with @flow or @task (from prefect import flow, task)."
            )
        self.obj = flow_or_task
        self.name: str = flow_or_task.name
        self.label = f"{self.kind} {self.name!r}"

    @property
    def parameter_names(self) -> list[str]:
        signature = inspect.signature(self.obj.fn)
        return [
            name
            for name, parameter in signature.parameters.items()
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]

    @property
    def takes_any_keyword(self) -> bool:
        parameters = inspect.signature(self.obj.fn).parameters.values()
        return any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters)

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowRunRecord:
        from pytest_prefect_flows.runner import RunFlow

        with record_runs() as run_log:
            if self.kind == "flow":
                return RunFlow(run_log)(self.obj, *args, **kwargs)
            return RunFlow(run_log)(self._task_flow(args, kwargs))

    def _task_flow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from prefect import flow

        task = self.obj
        if task.isasync:

            async def run_task() -> Any:
                return await task(*args, **kwargs)

            return flow(name=f"check-{task.name}")(run_task)

        def run_task_sync() -> Any:
            return task(*args, **kwargs)

        return flow(name=f"check-{task.name}")(run_task_sync)


def _require_callable(value: Any, name: str, helper: str, required: bool) -> None:
    if value is None and not required:
        return
    if not callable(value):
        raise UsageError(
            f"{helper}({name}={value!r}) takes a function with no arguments"
            + (
                " that returns a snapshot of the side effects, e.g. "
                "`observe=lambda: db.execute('SELECT * FROM orders ORDER BY id').fetchall()`."
                if name == "observe"
                else " that restores the destination to its initial state (it may return a context manager)."
            )
        )


def _require_runs(runs: Any, helper: str) -> int:
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 2:
        raise UsageError(f"{helper}(runs={runs!r}): runs is how many times to run it, an integer >= 2.")
    return runs


# ---------------------------------------------------------------------------------------------
# Scenarios: fresh state (reset) and a fresh result cache, then runs and snapshots


class _ResultCache:
    """The check's own local result storage, emptied before each compared run."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def clear(self) -> None:
        for child in self.path.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


@contextlib.contextmanager
def _check_scope() -> Iterator[_ResultCache]:
    """Fast retries and a private `PREFECT_LOCAL_STORAGE_PATH` for the whole check.

    The settings are switched once: building Prefect settings is slow, emptying a directory is not.
    """
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from pytest_prefect_flows.faults import fast_retries

    with (
        tempfile.TemporaryDirectory(prefix="prefect-flows-cache-", ignore_cleanup_errors=True) as path,
        temporary_settings({PREFECT_LOCAL_STORAGE_PATH: path}),
        fast_retries(),
    ):
        yield _ResultCache(path)


@dataclasses.dataclass
class _Check:
    """What a check runs (`target`), how it looks at side effects and restores state."""

    target: _Target
    observe: Observe | None
    reset: Reset | None
    cache: _ResultCache

    @contextlib.contextmanager
    def scenario(self) -> Iterator[None]:
        """Starts from `reset()`, inside the context manager it returns if any."""
        made: Any = self.reset() if self.reset is not None else None
        if inspect.isgenerator(made):
            raise UsageError(
                f"reset={self.reset!r} is a generator function; decorate it with "
                "@contextlib.contextmanager to build fresh state around each scenario, "
                "or make it a plain function."
            )
        if hasattr(made, "__enter__") and hasattr(made, "__exit__"):
            with made:
                yield
        else:
            yield

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any], fresh_cache: bool = True) -> FlowRunRecord:
        if fresh_cache:
            self.cache.clear()
        return self.target.run(args, kwargs)

    def finish(self, record: FlowRunRecord) -> _Outcome:
        """The run's result and the snapshot of side effects, taken now."""
        completed = record.state_type == "COMPLETED"
        result = _snapshot(record.result(raise_on_failure=False)) if completed else None
        return _Outcome(record, result, _observe(self.observe))

    def repeat(self, args: tuple[Any, ...], kwargs: dict[str, Any], runs: int) -> list[_Outcome]:
        """Runs it up to `runs` times, each with an empty result cache; stops at a run that fails."""
        outcomes: list[_Outcome] = []
        for _ in range(runs):
            outcomes.append(self.finish(self.run(args, kwargs)))
            if not outcomes[-1].completed:
                break
        return outcomes


def _snapshot(value: Any) -> Any:
    """A copy, so a snapshot is not changed by later runs (observe may return live objects)."""
    try:
        return copy.deepcopy(value)
    except Exception:  # not copyable: compare the object itself
        return value


def _observe(observe: Observe | None) -> Any:
    if observe is None:
        return None
    value = observe()
    if inspect.iscoroutine(value):
        from prefect.utilities.asyncutils import run_coro_as_sync

        value = run_coro_as_sync(value)
    return _snapshot(value)


@dataclasses.dataclass
class _Outcome:
    record: FlowRunRecord
    result: Any = None
    snapshot: Any = None

    @property
    def completed(self) -> bool:
        return self.record.state_type == "COMPLETED"

    def failure(self) -> str:
        exception = self.record.exception
        return (
            f"{self.record.state_name}: {exception!r}"
            if exception is not None
            else str(self.record.state_name)
        )


# ---------------------------------------------------------------------------------------------
# Comparing snapshots: equality, row changes, a readable diff


def _pretty(value: Any) -> str:
    return pprint.pformat(value, width=100, sort_dicts=True)


def _equal(left: Any, right: Any) -> bool:
    """`==`, or the same pretty-printed text (so NaN equals NaN and odd `__eq__`s do not raise)."""
    try:
        if bool(left == right):
            return True
    except Exception:  # e.g. arrays whose truth value is ambiguous
        pass
    return _pretty(left) == _pretty(right)


def _row_key(row: Any) -> str:
    return pprint.pformat(row, width=10**6, sort_dicts=True)


@dataclasses.dataclass
class RowChanges:
    """How the rows observed differ from the rows expected, as multisets (order aside)."""

    duplicated: list[tuple[str, int, int]]  # row, expected copies, observed copies
    added: list[tuple[str, int]]  # row, copies
    removed: list[tuple[str, int]]  # row, copies missing

    @classmethod
    def between(
        cls, expected: list[Any] | tuple[Any, ...], observed: list[Any] | tuple[Any, ...]
    ) -> RowChanges:
        want = collections.Counter(map(_row_key, expected))
        got = collections.Counter(map(_row_key, observed))
        duplicated = [(row, want[row], n) for row, n in got.items() if 0 < want[row] < n]
        added = [(row, n) for row, n in got.items() if want[row] == 0]
        removed = [(row, n - got[row]) for row, n in want.items() if got[row] < n]
        return cls(duplicated, added, removed)

    def __bool__(self) -> bool:
        return bool(self.duplicated or self.added or self.removed)

    def summary(self, where: str = "") -> str:
        """E.g. `inserted 3 duplicate rows and lost 1 row`."""
        parts = []
        extra = sum(observed - expected for _, expected, observed in self.duplicated)
        if extra:
            parts.append(f"inserted {extra} duplicate {_plural('row', extra)}")
        added = sum(n for _, n in self.added)
        if added:
            parts.append(f"inserted {added} unexpected {_plural('row', added)}")
        removed = sum(n for _, n in self.removed)
        if removed:
            parts.append(f"lost {removed} {_plural('row', removed)}")
        return " and ".join(parts) + where

    def lines(self, expected_label: str) -> list[str]:
        out = [
            f"duplicated: {row}  ({observed} copies, {expected_label} has {expected})"
            for row, expected, observed in self.duplicated
        ]
        out += [f"added:      {row}" + (f"  ({n} copies)" if n > 1 else "") for row, n in self.added]
        out += [f"missing:    {row}" + (f"  ({n} copies)" if n > 1 else "") for row, n in self.removed]
        return out


def _plural(word: str, count: int) -> str:
    return word if count == 1 else f"{word}s"


def _is_rows(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _is_tables(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(_is_rows(rows) for rows in value.values())


@dataclasses.dataclass
class SnapshotDiff:
    """What differs between two snapshots: a one-line summary and the detail lines."""

    summary: str
    details: list[str]


def diff_snapshots(
    expected: Any, observed: Any, expected_label: str, observed_label: str
) -> SnapshotDiff | None:
    """None when equal; else row changes (for lists of rows, or a dict of table -> rows) and a diff."""
    if _equal(expected, observed):
        return None
    summaries: list[str] = []
    details: list[str] = []
    if _is_rows(expected) and _is_rows(observed):
        changes = RowChanges.between(expected, observed)
        summaries.append(changes.summary() if changes else "has the same rows in a different order")
        details += changes.lines(expected_label)
    elif _is_tables(expected) and _is_tables(observed):
        for table in sorted(set(expected) | set(observed), key=str):
            changes = RowChanges.between(expected.get(table, []), observed.get(table, []))
            if changes:
                summaries.append(changes.summary(f" in {table!r}"))
                details += [f"{table!r}:", *_indent(changes.lines(expected_label))]
    summary = "; ".join(summaries) or "changed the side effects (observe())"
    details += unified_diff(expected, observed, expected_label, observed_label)
    return SnapshotDiff(summary, details)


def _diff_lines(value: Any) -> list[str]:
    """Pretty-printed, one row per line for rows and tables of rows, so a diff shows rows."""
    if _is_rows(value):
        return ["[", *[f"  {_row_key(row)}," for row in value], "]"]
    if _is_tables(value):
        lines = ["{"]
        for table in sorted(value, key=str):
            lines += [f"  {table!r}: [", *[f"    {_row_key(row)}," for row in value[table]], "  ],"]
        return [*lines, "}"]
    return _pretty(value).splitlines()


def unified_diff(expected: Any, observed: Any, expected_label: str, observed_label: str) -> list[str]:
    """difflib's unified diff of the pretty-printed values."""
    return list(
        difflib.unified_diff(
            _diff_lines(expected),
            _diff_lines(observed),
            fromfile=expected_label,
            tofile=observed_label,
            lineterm="",
        )
    )


def _compare(
    expected: _Outcome, observed: _Outcome, expected_label: str, observed_label: str
) -> SnapshotDiff | None:
    """Result and snapshot differences between two completed runs, merged; None when equal."""
    summaries: list[str] = []
    details: list[str] = []
    if not _equal(expected.result, observed.result):
        summaries.append("returned a different result")
        details += _result_lines(expected.result, observed.result, expected_label, observed_label)
    snapshots = diff_snapshots(expected.snapshot, observed.snapshot, expected_label, observed_label)
    if snapshots is not None:
        summaries.append(snapshots.summary)
        details += ["side effects (observe()):", *_indent(snapshots.details)]
    if not summaries:
        return None
    return SnapshotDiff(" and ".join(summaries), details)


def _result_lines(expected: Any, observed: Any, expected_label: str, observed_label: str) -> list[str]:
    short = [_pretty(expected), _pretty(observed)]
    if all("\n" not in text and len(text) <= 60 for text in short):
        return [f"result: {short[1]}  ({expected_label}: {short[0]})"]
    return ["result:", *_indent(unified_diff(expected, observed, expected_label, observed_label))]


def _indent(lines: list[str], by: str = "  ") -> list[str]:
    return [by + line for line in lines]


# ---------------------------------------------------------------------------------------------
# assert_idempotent


def _idempotency_problem(target: _Target, outcomes: list[_Outcome]) -> str | None:
    first = outcomes[0]
    for number, outcome in enumerate(outcomes, start=1):
        if not outcome.completed:
            return (
                f"{target.label} did not complete on run {number} of {len(outcomes)} "
                f"({outcome.failure()}).\n{outcome.record.timeline()}"
            )
        if number == 1:
            continue
        diff = _compare(first, outcome, "after run 1", f"after run {number}")
        if diff is not None:
            return "\n".join(
                [
                    f"{target.label} is not idempotent: run {number} {diff.summary}.",
                    *diff.details,
                    outcome.record.timeline(),
                ]
            )
    return None


def assert_idempotent(
    flow_or_task: Any,
    *args: Any,
    observe: Observe | None = None,
    runs: int = 2,
    reset: Reset | None = None,
    **kwargs: Any,
) -> None:
    """Run a flow (or a task, in an ad-hoc flow) `runs` times with the same arguments; each run must
    return the same result and leave the same `observe()` snapshot as the first.

    `reset` runs once before the first run (see the module docs). Raises `IdempotencyError` with the
    row changes and a diff of the snapshots.
    """
    __tracebackhide__ = True
    target = _Target(flow_or_task, "assert_idempotent")
    _require_callable(observe, "observe", "assert_idempotent", required=False)
    _require_callable(reset, "reset", "assert_idempotent", required=False)
    runs = _require_runs(runs, "assert_idempotent")
    with _check_scope() as cache:
        check = _Check(target, observe, reset, cache)
        with check.scenario():
            outcomes = check.repeat(args, kwargs, runs)
    problem = _idempotency_problem(target, outcomes)
    if problem is not None:
        raise IdempotencyError(problem, [problem.splitlines()[0]])


# ---------------------------------------------------------------------------------------------
# assert_retry_safe

Injection = Literal["after", "crash"]


@dataclasses.dataclass(frozen=True)
class InjectionPoint:
    """Where a failure is injected: after `task`'s body ran, or a crash before it."""

    task: str
    kind: Injection

    @property
    def fault(self) -> str:
        return "a failure after its body" if self.kind == "after" else "a crash before its body"

    def __str__(self) -> str:
        if self.kind == "after":
            return f"{self.task} ran its body, then failed"
        return f"{self.task} crashed before its body ran"


def _recovery(point: InjectionPoint, first: FlowRunRecord) -> str:
    """Who re-ran the work after the injected failure, as the subject of the sentence."""
    if first.state_type != "COMPLETED":
        return "the re-run"
    if any(run.attempts > 1 for run in first.find_tasks(point.task)):
        return f"Prefect's retry of {point.task}"
    if first.attempts > 1:
        return "Prefect's retry of the flow"
    return "the run (the flow handled the failure)"


def _run_point(
    check: _Check, point: InjectionPoint, args: tuple[Any, ...], kwargs: dict[str, Any], clean: _Outcome
) -> str | None:
    """One scenario: inject, recover (Prefect's retry, or one re-run), compare with the clean run."""
    from pytest_prefect_flows.faults import FaultInjector

    with check.scenario():
        with FaultInjector(check_unused=False) as injector:
            inject = injector.after if point.kind == "after" else injector.crash
            spec = inject(point.task, times=1)
            first = check.run(args, kwargs)
        if spec.fired == 0:
            return (
                f"{point.task}: {point.fault} was injected but never fired (the task did not run in this "
                "scenario, though it ran in the clean run); check that reset() restores the clean run's "
                "starting state."
            )
        recovery = _recovery(point, first)
        completed = first.state_type == "COMPLETED"
        final = first if completed else check.run(args, kwargs, fresh_cache=False)
        outcome = check.finish(final)
    runs = [first] if final is first else [first, final]
    timelines = [
        line
        for label, run in zip(("Injected run:", "Re-run:"), runs, strict=False)
        for line in [label, *_indent(run.timeline().splitlines())]
    ]
    if not outcome.completed:
        return "\n".join([f"{point}; {recovery} did not complete ({outcome.failure()})", *timelines])
    diff = _compare(clean, outcome, "clean run", f"after {recovery}")
    if diff is None:
        return None
    return "\n".join([f"{point}; {recovery} {diff.summary}", *diff.details, *timelines])


def assert_retry_safe(
    flow: Any,
    *args: Any,
    observe: Observe,
    reset: Reset | None = None,
    **kwargs: Any,
) -> None:
    """For every task of the flow (found by a clean run), inject a failure after the task's body and
    a crash before it; let Prefect retry (when the task has retries) or run the flow again (when the
    run failed or crashed); the result and `observe()` must equal the clean run's.

    `reset` runs before the clean run and before each injection point (see the module docs): side
    effects accumulate otherwise. Every broken injection point is reported, in `IdempotencyError`.
    A task (instead of a flow) is checked inside an ad-hoc flow.
    """
    __tracebackhide__ = True
    target = _Target(flow, "assert_retry_safe")
    _require_callable(observe, "observe", "assert_retry_safe", required=True)
    _require_callable(reset, "reset", "assert_retry_safe", required=False)
    with _check_scope() as cache:
        check = _Check(target, observe, reset, cache)
        with check.scenario():
            clean = check.finish(check.run(args, kwargs))
        if not clean.completed:
            raise IdempotencyError(
                f"The clean run of {target.label} did not complete ({clean.failure()}); "
                "assert_retry_safe needs a run that completes without injected failures.\n"
                + clean.record.timeline()
            )
        points = [
            InjectionPoint(task, kind) for task in clean.record.task_names for kind in ("after", "crash")
        ]
        if not points:
            raise UsageError(
                f"The clean run of {target.label} ran no tasks: there is nothing to inject into."
            )
        problems = [problem for point in points if (problem := _run_point(check, point, args, kwargs, clean))]
    if problems:
        raise IdempotencyError(_retry_report(target, points, problems), [p.splitlines()[0] for p in problems])


def _retry_report(target: _Target, points: list[InjectionPoint], problems: list[str]) -> str:
    lines = [f"{target.label} is not retry-safe at {len(problems)} of {len(points)} injection points:"]
    lines += [f"  {number}. {problem.splitlines()[0]}" for number, problem in enumerate(problems, start=1)]
    for number, problem in enumerate(problems, start=1):
        lines += ["", f"{number}. {problem.splitlines()[0]}", *_indent(problem.splitlines()[1:])]
    lines += [
        "",
        "Each scenario started from reset() with an empty result cache and was compared with a clean run.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# check_idempotent (hypothesis)


def _strategies_by_parameter(target: _Target, strategy: Any) -> dict[str, SearchStrategy[Any]]:
    from hypothesis.strategies import SearchStrategy

    names = target.parameter_names
    if isinstance(strategy, SearchStrategy):
        if not names:
            raise UsageError(f"check_idempotent(): {target.label} takes no parameters to generate.")
        return {names[0]: strategy}
    if (
        isinstance(strategy, Mapping)
        and strategy
        and all(isinstance(s, SearchStrategy) for s in strategy.values())
    ):
        unknown = [name for name in strategy if name not in names]
        if unknown and not target.takes_any_keyword:
            raise UsageError(
                f"check_idempotent(): {target.label} has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters: {', '.join(names) or '(none)'}."
            )
        return dict(strategy)
    raise UsageError(
        f"check_idempotent() takes a hypothesis strategy (drawn as the first parameter of {target.label}) "
        f"or a dict of parameter name -> strategy, got {strategy!r}; e.g. "
        "`records({'id': int, 'amount': float})` or `{'rows': records(...), 'mode': st.just('full')}`."
    )


def _settings(chosen: HypothesisSettings | None) -> HypothesisSettings:
    from hypothesis import settings as Settings

    if chosen is not None and not isinstance(chosen, Settings):
        raise UsageError(
            f"check_idempotent(settings={chosen!r}) takes a hypothesis `settings(...)` object "
            "(or None for the active profile)."
        )
    base = chosen if chosen is not None else Settings()
    if base.deadline == _HYPOTHESIS_DEFAULT_DEADLINE:
        return Settings(base, deadline=None)
    return base


def _database_key(target: _Target) -> bytes:
    """Tells hypothesis's example database (and `derandomize`) which check this is."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    fn = target.obj.fn
    return f"{fn.__module__}.{fn.__qualname__}|{target.name}|{test}".encode()


class _ShrinkBudgetSpent(BaseException):
    """Ends hypothesis's run once shrinking used its budget (a BaseException: not a test failure)."""


class _ShrinkBudget:
    """Stops shrinking after `limit` more inputs once an input failed; keeps the smallest failure.

    Shrinking can try hundreds of inputs, each costing several flow runs. Counted, not timed, so a
    derandomized run reports the same input each time. Smallest = shortest pretty-printed input.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = 0
        self.best: IdempotencyError | None = None
        self._best_size = 0

    def check(self) -> None:
        """Before each input: ends the run when the budget is spent."""
        if self.best is None or self.limit is None:
            return
        if self.spent >= self.limit:
            raise _ShrinkBudgetSpent
        self.spent += 1

    def failed(self, error: IdempotencyError, size: int) -> None:
        if self.best is None or size <= self._best_size:
            self.best, self._best_size = error, size

    def report(self) -> IdempotencyError:
        assert self.best is not None
        note = (
            f"(Shrinking stopped after {self.spent} more inputs, max_shrinks={self.limit}: "
            "the input above is the smallest failing one found; max_shrinks=None shrinks further.)"
        )
        return IdempotencyError(f"{self.best}\n{note}", self.best.problems)


def _require_shrinks(max_shrinks: Any) -> int | None:
    if max_shrinks is None or (
        isinstance(max_shrinks, int) and not isinstance(max_shrinks, bool) and max_shrinks >= 0
    ):
        return max_shrinks
    raise UsageError(
        f"check_idempotent(max_shrinks={max_shrinks!r}) takes how many inputs to try while shrinking a "
        "failure, an integer >= 0 (or None for hypothesis's own limits)."
    )


def _property(check: _Check, runs: int, budget: _ShrinkBudget) -> Callable[..., None]:
    """The function hypothesis calls with each generated input (as keyword arguments)."""

    def example(**kwargs: Any) -> None:
        __tracebackhide__ = True
        budget.check()
        shown = _pretty(kwargs)
        with check.scenario():
            outcomes = check.repeat((), kwargs, runs)
        problem = _idempotency_problem(check.target, outcomes)
        if problem is not None:
            lines = [problem, "Input:", *_indent(shown.splitlines())]
            error = IdempotencyError("\n".join(lines), [problem.splitlines()[0]])
            budget.failed(error, len(shown))
            raise error

    # hypothesis names the falsifying example after the function, and keys its database by it.
    example.__name__ = example.__qualname__ = re.sub(r"\W|^(?=\d)", "_", check.target.name)
    example._hypothesis_internal_add_digest = _database_key(check.target)  # type: ignore[attr-defined]
    return example


def check_idempotent(
    flow_or_task: Any,
    strategy: Any,
    *,
    observe: Observe | None = None,
    settings: HypothesisSettings | None = None,
    reset: Reset | None = None,
    runs: int = 2,
    max_shrinks: int | None = 30,
) -> None:
    """A hypothesis property: for every generated input, `assert_idempotent` holds.

    `strategy`: a strategy drawn as the first parameter, or a dict of parameter name -> strategy.
    `reset` is called before each example, and each example runs inside the context manager it
    returns, if any: fresh state per example, never a function-scoped fixture. `settings`: a
    hypothesis `settings(...)`; None uses the active profile (register one with
    `derandomize=True` for CI). hypothesis's default 200 ms deadline is lifted (flows take longer);
    another deadline is kept. A failure shows the smallest input found and the diff; shrinking
    tries at most `max_shrinks` inputs after the first failure (None: hypothesis's own limits).
    """
    __tracebackhide__ = True
    from hypothesis import given

    target = _Target(flow_or_task, "check_idempotent")
    _require_callable(observe, "observe", "check_idempotent", required=False)
    _require_callable(reset, "reset", "check_idempotent", required=False)
    runs = _require_runs(runs, "check_idempotent")
    budget = _ShrinkBudget(_require_shrinks(max_shrinks))
    by_parameter = _strategies_by_parameter(target, strategy)

    with _check_scope() as cache:
        example = _property(_Check(target, observe, reset, cache), runs, budget)
        try:
            _settings(settings)(given(**by_parameter)(example))()
        except _ShrinkBudgetSpent:
            raise budget.report() from None
