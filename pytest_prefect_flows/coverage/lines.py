"""Line coverage of flow and task functions, read from the running coverage.py (if any).

Works with `pytest --cov` (pytest-cov) and `coverage run -m pytest`: both leave a started
`coverage.Coverage` that `Coverage.current()` returns while tests run.
"""

from __future__ import annotations

import sys
from typing import Any


def measure(functions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """key -> {file, statements, executed} (line numbers inside the function), {} without coverage."""
    if "coverage" not in sys.modules:
        return {}  # a measuring coverage.py was imported by its runner; importing it here costs ~0.1 s
    try:
        from coverage import Coverage
    except ImportError:
        return {}
    cov = Coverage.current()
    if cov is None:
        return {}
    analyses: dict[str, tuple[set[int], set[int]] | None] = {}
    measured = {}
    for key, function in functions.items():
        filename = function["file"]
        if filename not in analyses:
            analyses[filename] = _analyse(cov, filename)
        analysis = analyses[filename]
        if analysis is None:
            continue
        statements, missing = analysis
        # The `def` line ran at import; only the body says whether the function was exercised.
        inside = {line for line in statements if function["first"] < line <= function["last"]}
        measured[key] = {
            "file": filename,
            "statements": sorted(inside),
            "executed": sorted(inside - missing),
        }
    return measured


def _analyse(cov: Any, filename: str) -> tuple[set[int], set[int]] | None:
    try:
        _, statements, _, missing, _ = cov.analysis2(filename)
    except Exception:  # not measured (outside --cov sources) or no source
        return None
    return set(statements), set(missing)


def merge_lines(
    ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Union of executed lines per function (statements are the same source either way)."""
    merged = {key: dict(value) for key, value in ours.items()}
    for key, value in theirs.items():
        if key not in merged:
            merged[key] = dict(value)
            continue
        executed = set(merged[key]["executed"]) | set(value["executed"])
        merged[key]["executed"] = sorted(executed)
    return merged


def percent(measured: dict[str, Any] | None) -> float | None:
    """Percent of a function's statements executed (None when not measured)."""
    if not measured or not measured["statements"]:
        return None
    return round(100.0 * len(measured["executed"]) / len(measured["statements"]), 1)
