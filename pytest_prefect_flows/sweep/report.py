"""What a fault sweep found: one `SweepPoint` per fault (or schedule of faults), the `SweepReport`.

`SweepReport.assert_recovered()` raises `FaultSweepError` listing every failing point with what it
observed against the clean run; `table()` is the text table `-v` prints, `to_data()` the plain data
the HTML report draws.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.exceptions import FaultSweepError

if TYPE_CHECKING:
    from pytest_prefect_flows.recording import FlowRunRecord
    from pytest_prefect_flows.sweep.points import FaultPoint, Mode

_SHOWN_ROWS = 3


@dataclasses.dataclass(frozen=True)
class Fault:
    """One injected fault: at `point`, `mode` ("before" its body, "after" it, or "crash")."""

    point: FaultPoint
    mode: Mode
    times: int = 1

    def __str__(self) -> str:
        times = f" x{self.times}" if self.times > 1 else ""
        return f"{self.point.label} [{self.mode}{times}]"


@dataclasses.dataclass(eq=False)
class SweepPoint:
    """The outcome of one point: the fault(s), the runs' final states, what `observe()` saw."""

    faults: tuple[Fault, ...]
    fault_state: str | None
    rerun_state: str | None
    observation: Any
    matched: bool
    problem: str | None = None
    details: list[str] = dataclasses.field(default_factory=list)
    runs: list[FlowRunRecord] = dataclasses.field(default_factory=list, repr=False)

    @property
    def task(self) -> str:
        return self.faults[0].point.task

    @property
    def index(self) -> int:
        return self.faults[0].point.index

    @property
    def mode(self) -> Mode:
        return self.faults[0].mode

    @property
    def passed(self) -> bool:
        return self.problem is None

    @property
    def label(self) -> str:
        """`load [after]`; a schedule of several faults joins them with `, `."""
        return ", ".join(map(str, self.faults))

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"<SweepPoint {self.label}: fault run {self.fault_state}, rerun {self.rerun_state or '-'}, "
            f"{verdict}>"
        )


@dataclasses.dataclass(eq=False)
class SweepReport:
    """Every point swept, compared with the clean run (`baseline`, what `observe()` saw then)."""

    flow_name: str
    baseline: Any
    points: list[SweepPoint]
    seconds: float
    runs: int
    skipped: int = 0  # points left out by max_points
    examples: int = 0  # hypothesis examples tried (schedule mode)

    @property
    def failed(self) -> list[SweepPoint]:
        return [point for point in self.points if not point.passed]

    @property
    def passed(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """`fault sweep of 'etl': 10 points, 24 flow runs in 1.8 s, 1 failed`."""
        what = _count(self.examples, "schedule") if self.examples else _count(len(self.points), "point")
        skipped = f" ({self.skipped} more left out by max_points)" if self.skipped else ""
        verdict = f"{len(self.failed)} failed" if self.failed else "all recovered"
        return (
            f"fault sweep of {self.flow_name!r}: {what}{skipped}, {self.runs} flow runs "
            f"in {self.seconds:.1f} s, {verdict}"
        )

    def table(self) -> str:
        """One line per point: the fault, the fault run's state, the rerun's, the verdict."""
        rows = [("point", "fault run", "rerun", "result")]
        rows += [
            (
                point.label,
                point.fault_state or "-",
                point.rerun_state or "-",
                "ok" if point.passed else f"FAILED: {point.problem}",
            )
            for point in self.points
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
            for row in rows
        ]
        return "\n".join([self.summary(), *lines])

    def assert_recovered(self) -> None:
        """Raise `FaultSweepError` naming every point whose final observation differs from the clean run."""
        __tracebackhide__ = True
        if not self.failed:
            return
        lines = [f"{self.summary()}:"]
        lines += [f"  {point.label}: {point.problem}" for point in self.failed]
        for point in self.failed:
            lines += ["", f"{point.label}: {point.problem}", *[f"  {line}" for line in point.details]]
        lines += [
            "",
            "Each point started from setup(), ran the flow with that one fault, then (rerun=True) ran it "
            "again without faults, as an operator would; the final observe() must equal the clean run's. "
            "Pass check=lambda baseline, observed: ... to accept other outcomes.",
        ]
        raise FaultSweepError("\n".join(lines), [f"{p.label}: {p.problem}" for p in self.failed])

    def to_data(self) -> dict[str, Any]:
        """Plain data (JSON-able) for reports."""
        return {
            "flow": self.flow_name,
            "summary": self.summary(),
            "seconds": round(self.seconds, 3),
            "runs": self.runs,
            "points": [
                {
                    "point": point.label,
                    "fault_run": point.fault_state,
                    "rerun": point.rerun_state,
                    "matched": point.matched,
                    "problem": point.problem,
                }
                for point in self.points
            ],
        }

    def __repr__(self) -> str:
        return f"<SweepReport {self.summary()}>"


def describe_difference(baseline: Any, observed: Any) -> tuple[str, list[str]]:
    """`6 rows, clean run 3 rows: duplicates (0, 'ROW-0') ...` and the detail lines (a diff)."""
    from pytest_prefect_flows.idempotency import RowChanges, _is_rows, diff_snapshots

    diff = diff_snapshots(baseline, observed, "clean run", "after the fault")
    details = diff.details if diff is not None else []
    if not (_is_rows(baseline) and _is_rows(observed)):
        return (f"observed {_short(observed)}, clean run {_short(baseline)}", details)
    sizes = f"{_rows(len(observed))}, clean run {_rows(len(baseline))}"
    changes = RowChanges.between(baseline, observed)
    parts = [
        _listed("duplicates", [row for row, _, _ in changes.duplicated]),
        _listed("unexpected", [row for row, _ in changes.added]),
        _listed("missing", [row for row, _ in changes.removed]),
    ]
    found = "; ".join(part for part in parts if part) or "same rows in a different order"
    return (f"{sizes}: {found}", details)


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _rows(count: int) -> str:
    return _count(count, "row")


def _listed(what: str, rows: list[str]) -> str:
    if not rows:
        return ""
    more = " ..." if len(rows) > _SHOWN_ROWS else ""
    return f"{what} {', '.join(rows[:_SHOWN_ROWS])}{more}"


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


Check = Callable[[Any, Any], Any]
