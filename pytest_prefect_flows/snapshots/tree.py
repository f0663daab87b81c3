"""The run tree: what a flow run did, without ids, timestamps or durations, in a stable order.

`run_tree(run)` turns a `FlowRunRecord` into plain data (dicts, lists, strings, numbers: JSON for
`--prefect-record`) and `render_tree(tree)` into the text a snapshot stores::

    flow etl: Completed (attempts 1)
      task extract: Completed (attempts 1)
      task transform: Completed (attempts 3, retry delays 1.0s 2.0s)
      subflow publish: Completed (attempts 1)
        task write: Cached (attempts 0)
      task score[0]: Completed (attempts 1, submitted)
      task score[1]: Failed (attempts 1, raised ValueError, submitted)
      task report: Completed (attempts 1)
          artifact markdown 'daily-report'

Artifacts show under the run that created them, by type and key; `include=("artifacts",)` adds
their data (which may hold dates or counts that change from run to run).

Order. Task runs and subflows the flow called directly come first, in the order they ran (that
order is the flow's code). Runs submitted to the task runner (`.submit`, `.map`) run concurrently,
so their order is the thread scheduler's: they come after, sorted by task name and parameters, so
`task.map(range(n))` runs appear as `[0]`, `[1]`, ... whichever finished first. A refactor that
turns a mapped task into a loop (or back) changes the tree.

Works without pytest and without syrupy.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_prefect_flows.artifacts import ArtifactRecord
    from pytest_prefect_flows.recording import FlowRunRecord, _RunRecord

#: What `include=` may name, besides the tree itself.
SECTIONS = ("parameters", "results", "artifacts")

# syrupy's property matcher: matcher(data=value, path=((name, type), ...)) -> value
Matcher = Callable[..., Any]
Path = tuple[tuple[str, type], ...]

_FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def check_include(include: Any) -> tuple[str, ...]:
    """`include=` as a tuple of section names; anything else is a usage error naming the choices."""
    from pytest_prefect_flows.exceptions import UsageError

    if include is None or callable(include):  # syrupy's own property filter: not ours to apply
        return ()
    names = (include,) if isinstance(include, str) else tuple(include)
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise UsageError(
            f"include={include!r} names {', '.join(map(repr, unknown))}; a Prefect run snapshot can "
            f"include {', '.join(map(repr, SECTIONS))}, e.g. include=('parameters', 'results')."
        )
    return names


def run_tree(run: FlowRunRecord, include: Any = (), matcher: Matcher | None = None) -> dict[str, Any]:
    """The run as plain data: kind, name, state, attempts, retry delays, error type, children."""
    return _Builder(check_include(include), matcher).flow(run, "flow", run.flow_name, ())


def render_tree(tree: dict[str, Any]) -> str:
    """The text form of a `run_tree`, one run per line, children indented."""
    return "\n".join(_lines(tree, indent=""))


def render_run(run: FlowRunRecord, include: Any = (), matcher: Matcher | None = None) -> str:
    return render_tree(run_tree(run, include, matcher))


class _Builder:
    def __init__(self, include: tuple[str, ...], matcher: Matcher | None) -> None:
        self.include = include
        self.matcher = matcher

    def flow(self, run: FlowRunRecord, kind: str, label: str, parent: Path) -> dict[str, Any]:
        path = (*parent, (label, type(run)))
        node = self._node(run, kind, label, path)
        self._add_artifacts(node, [artifact for artifact in run.artifacts if artifact.task_run is None], path)
        node["children"] = self._children(run, path)
        return node

    def _add_artifacts(self, node: dict[str, Any], artifacts: list[ArtifactRecord], path: Path) -> None:
        """The artifacts a run created (only when it created some, so older baselines still match)."""
        if not artifacts:
            return
        node["artifacts"] = [
            {"type": artifact.type, "key": artifact.key}
            | (
                {"data": self._match(artifact.data, path, "artifacts", str(i))}
                if "artifacts" in self.include
                else {}
            )
            for i, artifact in enumerate(artifacts)
        ]

    def _children(self, run: FlowRunRecord, path: Path) -> list[dict[str, Any]]:
        ordered = stable_order(run)
        counts = Counter(_group_key(child) for child in ordered)
        seen: dict[tuple[str, str], int] = {}
        children = []
        for child in ordered:
            key = _group_key(child)
            index = seen[key] = seen.get(key, -1) + 1
            label = f"{key[1]}[{index}]" if counts[key] > 1 else key[1]
            if key[0] == "subflow":
                node = self.flow(child, "subflow", label, path)  # type: ignore[arg-type]
            else:
                node = self._node(child, "task", label, (*path, (label, type(child))))
                created = [artifact for artifact in run.artifacts if artifact.task_run is child]
                self._add_artifacts(node, created, (*path, (label, type(child))))
            node["submitted"] = _submitted(child, run)
            children.append(node)
        return children

    def _node(self, run: _RunRecord, kind: str, label: str, path: Path) -> dict[str, Any]:
        exception = run.exception
        node: dict[str, Any] = {
            "kind": kind,
            "name": label,
            "state": run.state_name,
            "attempts": run.attempts,  # type: ignore[attr-defined]
            "retry_delays": [
                self._match(delay, path, "retry_delays", str(i))
                for i, delay in enumerate(run.retry_delays)  # type: ignore[attr-defined]
            ],
            "error": type(exception).__name__ if exception is not None else None,
        }
        if "parameters" in self.include:
            node["parameters"] = {
                name: self._match(value, path, "parameters", name) for name, value in run.parameters.items()
            }
        if "results" in self.include:
            node["result"] = self._match(_result(run), path, "result")
        return node

    def _match(self, value: Any, path: Path, *names: str) -> Any:
        if self.matcher is None:
            return value
        full = (*path, *((name, type(value)) for name in names))
        return self.matcher(data=value, path=full)


def _group_key(run: _RunRecord) -> tuple[str, str]:
    from pytest_prefect_flows.recording import FlowRunRecord

    if isinstance(run, FlowRunRecord):
        return ("subflow", run.flow_name)
    return ("task", run.task_name)  # type: ignore[attr-defined]


def stable_order(run: FlowRunRecord) -> list[_RunRecord]:
    """The task runs and subflows of a run: first those it called directly, in the order they ran;
    then those submitted to its task runner (`.submit`, `.map`), by task name and parameters."""
    children: list[_RunRecord] = [*run.task_runs, *run.subflows]
    direct = sorted((child for child in children if not _submitted(child, run)), key=_start_of)
    submitted = [child for child in children if _submitted(child, run)]
    return [*_in_stages(direct), *sorted(submitted, key=_sort_key)]


def _submitted(child: _RunRecord, parent: FlowRunRecord) -> bool:
    return child.thread is not None and parent.thread is not None and child.thread != parent.thread


def _in_stages(runs: list[_RunRecord]) -> list[_RunRecord]:
    """Runs in start order, except that runs overlapping in time (async concurrency) are sorted."""
    ordered: list[_RunRecord] = []
    stage: list[_RunRecord] = []
    stage_end = _FAR_FUTURE
    for run in runs:
        if stage and _start_of(run) >= stage_end:
            ordered += sorted(stage, key=_sort_key)
            stage = []
        stage_end = _end_of(run) if not stage else max(stage_end, _end_of(run))
        stage.append(run)
    return ordered + sorted(stage, key=_sort_key)


def _start_of(run: _RunRecord) -> dt.datetime:
    return run.history[0].timestamp if run.history else _FAR_FUTURE


def _end_of(run: _RunRecord) -> dt.datetime:
    return run.ended or _FAR_FUTURE


def _sort_key(run: _RunRecord) -> tuple[Any, ...]:
    return (_group_key(run), _value_key(run.parameters), render_tree(_summary(run)))


def _summary(run: _RunRecord) -> dict[str, Any]:
    """Enough of a run to order runs whose parameters are equal (by outcome, not by time)."""
    return _Builder((), None)._node(run, "task", "", ())


def _value_key(value: Any) -> tuple[Any, ...]:
    """Sort key that orders numbers numerically and never compares unlike types."""
    if isinstance(value, bool):
        return (1, str(value))
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return (0, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, dict):
        return (3, tuple((str(key), _value_key(item)) for key, item in sorted(value.items(), key=str)))
    if isinstance(value, (list, tuple)):
        return (4, tuple(_value_key(item) for item in value))
    return (5, stable_repr(value))


def _result(run: _RunRecord) -> Any:
    if run.exception is not None:
        return None
    try:
        return run.result(raise_on_failure=False)
    except Exception as exc:  # a result that cannot be read back (not persisted, storage gone)
        return f"<result not available: {type(exc).__name__}>"


def stable_repr(value: Any) -> str:
    """`repr` with dict keys and set members sorted, so equal values always print the same."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: stable_repr(item[0]))
        return "{" + ", ".join(f"{stable_repr(k)}: {stable_repr(v)}" for k, v in items) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(stable_repr(item) for item in value)) + "}" if value else "set()"
    if isinstance(value, list):
        return "[" + ", ".join(stable_repr(item) for item in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(stable_repr(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def _lines(node: dict[str, Any], indent: str) -> list[str]:
    lines = [f"{indent}{node['kind']} {node['name']}: {node['state']}{_details(node)}"]
    if "parameters" in node:
        lines.append(f"{indent}    parameters: {stable_repr(node['parameters'])}")
    if "result" in node:
        lines.append(f"{indent}    result: {stable_repr(node['result'])}")
    for artifact in node.get("artifacts", []):
        data = f": {stable_repr(artifact['data'])}" if "data" in artifact else ""
        lines.append(f"{indent}    artifact {artifact['type']} {artifact['key']!r}{data}")
    for child in node.get("children", []):
        lines += _lines(child, indent + "  ")
    return lines


def _details(node: dict[str, Any]) -> str:
    parts = [f"attempts {node['attempts']}"]
    if node["retry_delays"]:
        parts.append("retry delays " + " ".join(_seconds(delay) for delay in node["retry_delays"]))
    if node["error"]:
        parts.append(f"raised {node['error']}")
    if node.get("submitted"):
        parts.append("submitted")
    return f" ({', '.join(parts)})"


def _seconds(delay: Any) -> str:
    return f"{delay}s" if isinstance(delay, (int, float)) else repr(delay)
