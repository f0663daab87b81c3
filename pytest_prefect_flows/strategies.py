"""Hypothesis strategies for flow inputs: record batches and failure plans.

`records(schema)` draws lists of dict rows, the usual input of an extract/transform/load step::

    records({"id": int, "name": str, "amount": float}, unique_by="id")
    records({"id": int, "amount": float | None}, bad_values=["amount"])  # for transform tests

`failure_plans(task_names)` draws which tasks fail, where (before the body, after it, or a crash)
and how many times; `plan.inject()` is a fresh `FaultInjector` with the plan applied, so each
hypothesis example builds its own::

    @given(failure_plans(["extract", "load"]))
    def test_recovers(plan):
        with fresh_database(), plan.inject():
            run_flow(etl)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from pytest_prefect_flows.exceptions import UsageError
from pytest_prefect_flows.recording import task_name_of

if TYPE_CHECKING:
    from pytest_prefect_flows.faults import FaultInjector

__all__ = ["FailurePlan", "PlannedFault", "failure_plans", "records"]

Where = Literal["before", "after", "crash"]
WHERE: tuple[Where, ...] = ("before", "after", "crash")

_UTC = dt.timezone.utc
_MIN_DATE, _MAX_DATE = dt.date(2000, 1, 1), dt.date(2100, 12, 31)

# Values that real feeds carry where a number, a date or a flag should be.
_JUNK_TEXT = ("", " ", "n/a", "NULL", "None", "-", "?")


def _good_values(field: str, kind: Any) -> SearchStrategy[Any]:
    """A realistic strategy for a field declared as a type (or already a strategy)."""
    if isinstance(kind, SearchStrategy):
        return kind
    if _is_optional(kind):
        return st.none() | _good_values(field, _without_none(kind))
    simple = _SIMPLE.get(kind)
    if simple is not None:
        return simple
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return st.sampled_from(kind)
    if isinstance(kind, type):
        return st.from_type(kind)
    raise UsageError(
        f"records(): field {field!r} is declared as {kind!r}; declare each field as a type "
        f"({', '.join(sorted(t.__name__ for t in _SIMPLE))}, an Enum, `X | None`, ...) "
        "or as a hypothesis strategy, e.g. `{'id': int, 'status': st.sampled_from(['new', 'paid'])}`."
    )


_SIMPLE: dict[Any, SearchStrategy[Any]] = {
    # Non-negative and 32-bit: what id and count columns hold.
    int: st.integers(min_value=0, max_value=2**31 - 1),
    float: st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
    str: st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40),
    bool: st.booleans(),
    bytes: st.binary(max_size=64),
    decimal.Decimal: st.decimals(
        min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False
    ),
    dt.date: st.dates(_MIN_DATE, _MAX_DATE),
    dt.datetime: st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 12, 31), timezones=st.just(_UTC)),
    uuid.UUID: st.uuids(),
}


def _is_optional(kind: Any) -> bool:
    origin = typing.get_origin(kind)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind)


def _without_none(kind: Any) -> Any:
    rest = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007


def _bad_values(kind: Any) -> SearchStrategy[Any]:
    """Values a transform meets in real feeds instead of a proper `kind`: junk text, NaN, bad dates."""
    junk = st.sampled_from(_JUNK_TEXT)
    if _is_optional(kind):
        kind = _without_none(kind)
    if kind is int:
        return junk | st.integers(-(2**31), 2**31 - 1).map(lambda n: f" {n} ") | st.just(float("nan"))
    if kind in (float, decimal.Decimal):
        return junk | st.sampled_from([float("nan"), float("inf"), float("-inf"), "1,5", "1e400"])
    if kind is str:
        return st.sampled_from(["", "   ", "\t", "NULL", "None"]) | st.text(max_size=10).map(
            lambda text: f"\x00{text}\n"
        )
    if kind is bool:
        return st.sampled_from(["yes", "no", "0", "1", "true", "False", ""])
    if kind in (dt.date, dt.datetime):
        return junk | st.sampled_from(["2024-02-30", "31/12/2024", "not a date", "0000-00-00"])
    return junk


def _field_set(option: str, value: bool | Iterable[str], fields: Collection[str]) -> frozenset[str]:
    if isinstance(value, bool):
        return frozenset(fields) if value else frozenset()
    chosen = frozenset([value] if isinstance(value, str) else value)
    unknown = sorted(chosen - set(fields))
    if unknown:
        raise UsageError(
            f"records({option}={value!r}) names fields that are not in the schema: "
            f"{', '.join(map(repr, unknown))}. Fields: {', '.join(map(repr, fields))}."
        )
    return chosen


def _field_strategy(field: str, kind: Any, nullable: bool, bad: bool) -> SearchStrategy[Any]:
    strategy = _good_values(field, kind)
    if bad:
        strategy = strategy | _bad_values(kind)
    if nullable:
        strategy = strategy | st.none()
    return strategy


def records(
    schema: Mapping[str, Any],
    *,
    min_size: int = 0,
    max_size: int = 20,
    unique_by: str | Iterable[str] | None = None,
    nullable: bool | Iterable[str] = False,
    bad_values: bool | Iterable[str] = False,
) -> SearchStrategy[list[dict[str, Any]]]:
    """Lists of dict rows with the schema's fields, in the schema's order.

    `schema` maps field names to a type (`int`, `str`, `float`, `bool`, `bytes`, `Decimal`, `date`,
    `datetime` (UTC), `UUID`, an Enum, `X | None`, other classes through `st.from_type`) or to a
    hypothesis strategy. Types draw realistic values: ints are non-negative 32-bit (id and count
    columns), floats finite, text without control characters.

    `unique_by`: field(s) whose values are unique within a batch (e.g. the primary key `"id"`).
    `nullable`: fields (or True for all) that may be None. `bad_values`: fields (or True for all)
    that may hold what dirty feeds carry instead: junk text such as `"n/a"`, numbers as padded
    text, NaN and infinities, impossible dates; meant for testing a transform's validation.
    """
    if not isinstance(schema, Mapping) or not schema:
        raise UsageError(
            f"records() takes a non-empty dict of field name -> type or strategy, got {schema!r}; "
            "e.g. `records({'id': int, 'name': str, 'amount': float})`."
        )
    if not 0 <= min_size <= max_size:
        raise UsageError(
            f"records(min_size={min_size!r}, max_size={max_size!r}) needs 0 <= min_size <= max_size."
        )
    fields = list(schema)
    keys = _field_set("unique_by", [] if unique_by is None else unique_by, fields)
    maybe_none = _field_set("nullable", nullable, fields)
    dirty = _field_set("bad_values", bad_values, fields)
    row = st.fixed_dictionaries(
        {
            name: _field_strategy(name, kind, name in maybe_none, name in dirty)
            for name, kind in schema.items()
        }
    ).map(lambda drawn: {name: drawn[name] for name in fields})  # hypothesis sorts the keys
    key_fields = [name for name in fields if name in keys]
    if not key_fields:
        return st.lists(row, min_size=min_size, max_size=max_size)
    return st.lists(
        row,
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda r: tuple(_hashable(r[name]) for name in key_fields),
    )


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


@dataclasses.dataclass(frozen=True)
class PlannedFault:
    """One fault of a plan: `task` fails `where` ("before" its body, "after" it, "crash"), `times` times."""

    task: str
    where: Where
    times: int = 1

    def apply(self, injector: FaultInjector) -> None:
        if self.where == "before":
            injector(self.task, times=self.times)
        elif self.where == "after":
            injector.after(self.task, times=self.times)
        else:
            injector.crash(self.task, times=self.times)

    def __str__(self) -> str:
        what = {"before": "fails before its body", "after": "fails after its body", "crash": "crashes"}
        times = "once" if self.times == 1 else f"{self.times} times"
        return f"{self.task} {what[self.where]} {times}"


@dataclasses.dataclass(frozen=True)
class FailurePlan:
    """Faults to inject in one run; apply it to a `FaultInjector`, or `inject()` a fresh one."""

    faults: tuple[PlannedFault, ...]

    def apply(self, injector: FaultInjector) -> FaultInjector:
        """Register every fault of the plan with `injector`; returns it."""
        for fault in self.faults:
            fault.apply(injector)
        return injector

    @property
    def tasks(self) -> list[str]:
        return [fault.task for fault in self.faults]

    def inject(self, *, check_unused: bool = False) -> FaultInjector:
        """A new `FaultInjector` with the plan applied; use it as a context manager per example.

        `check_unused` is off by default: a plan may name a task the failed run never reached.
        """
        from pytest_prefect_flows.faults import FaultInjector

        return self.apply(FaultInjector(check_unused=check_unused))

    def __iter__(self) -> Iterator[PlannedFault]:
        return iter(self.faults)

    def __len__(self) -> int:
        return len(self.faults)

    def __str__(self) -> str:
        return "; ".join(map(str, self.faults)) or "no faults"


def failure_plans(
    task_names: Iterable[Any],
    *,
    where: Iterable[Where] = WHERE,
    max_times: int = 2,
    min_faults: int = 1,
    max_faults: int = 1,
) -> SearchStrategy[FailurePlan]:
    """Plans of which tasks fail, where (`"before"`, `"after"`, `"crash"`) and how many times.

    `task_names`: task names or @task objects. At most one fault per task in a plan; shrinking
    goes towards fewer faults, the first task, failing before the body, once.
    """
    names = list(dict.fromkeys(task_name_of(task) for task in task_names))
    if not names:
        raise UsageError("failure_plans() needs at least one task name (or @task object) to fail.")
    kinds = list(dict.fromkeys(where))
    if not kinds or any(kind not in WHERE for kind in kinds):
        raise UsageError(f"failure_plans(where={where!r}) takes some of {WHERE!r}.")
    if isinstance(max_times, bool) or not isinstance(max_times, int) or max_times < 1:
        raise UsageError(f"failure_plans(max_times={max_times!r}) takes a positive integer.")
    if not 0 <= min_faults <= max_faults:
        raise UsageError(
            f"failure_plans(min_faults={min_faults!r}, max_faults={max_faults!r}) "
            "needs 0 <= min_faults <= max_faults."
        )
    if min_faults > len(names):
        raise UsageError(
            f"failure_plans(min_faults={min_faults!r}) needs that many distinct tasks; got {len(names)}: "
            f"{', '.join(names)}."
        )
    fault = st.builds(
        PlannedFault,
        task=st.sampled_from(names),
        where=st.sampled_from(kinds),
        times=st.integers(1, max_times),
    )
    faults = st.lists(
        fault, min_size=min_faults, max_size=min(max_faults, len(names)), unique_by=lambda f: f.task
    )
    return faults.map(lambda planned: FailurePlan(tuple(planned)))
