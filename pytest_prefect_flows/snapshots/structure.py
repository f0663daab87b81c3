"""`flow_structure(flow)`: a flow's configuration and the tasks it references, without running it.

Compared with a snapshot, it makes configuration drift (a retry count lowered, a timeout removed,
a cache policy changed) show up in review::

    def test_etl_structure(snapshot):
        assert flow_structure(etl) == snapshot

Referenced tasks and subflows are found statically, from the names the flow function's code
(and the functions and comprehensions nested in it) looks up, in the order it first mentions them.
A task reached only through another function's code is not listed. Works without pytest and
without syrupy; the result is a plain dataclass, so syrupy's default extension stores it as well
as `PrefectRunSnapshot`, which stores its text form.
"""

from __future__ import annotations

import dataclasses
import dis
import inspect
import types
from collections.abc import Iterator
from typing import Any

from pytest_prefect_flows.snapshots.tree import stable_repr


@dataclasses.dataclass(frozen=True)
class TaskStructure:
    """What a task is configured to do."""

    name: str
    retries: int
    retry_delay_seconds: Any
    retry_jitter_factor: float | None
    timeout_seconds: float | None
    cache_policy: str
    cache_expiration: str | None
    persist_result: bool | None
    result_storage: str | None
    tags: list[str]


@dataclasses.dataclass(frozen=True)
class FlowStructure:
    """What a flow is configured to do, and the tasks and subflows its code references."""

    name: str
    parameters: dict[str, Any]
    retries: int
    retry_delay_seconds: Any
    timeout_seconds: float | None
    task_runner: str
    persist_result: bool | None
    result_storage: str | None
    result_serializer: str | None
    tasks: list[TaskStructure]
    subflows: list[FlowStructure]

    def __str__(self) -> str:
        return "\n".join(_structure_lines(self, ""))


def flow_structure(flow: Any) -> FlowStructure:
    """The static description of a `@flow`: parameters schema, retries, timeouts, tasks, ..."""
    return _describe_flow(flow, seen=set())


def _describe_flow(flow: Any, seen: set[int]) -> FlowStructure:
    from prefect import Flow, Task

    from pytest_prefect_flows.exceptions import UsageError

    if not isinstance(flow, Flow):
        raise UsageError(
            f"flow_structure() takes a @flow object, got {flow!r} ({type(flow).__name__}); "
            "pass the decorated flow itself, e.g. flow_structure(etl)."
        )
    seen = seen | {id(flow)}
    referenced = list(_referenced(flow.fn))
    return FlowStructure(
        name=flow.name,
        parameters=flow.parameters.model_dump(mode="json", exclude_none=True),
        retries=flow.retries or 0,
        retry_delay_seconds=flow.retry_delay_seconds,
        timeout_seconds=flow.timeout_seconds,
        task_runner=type(flow.task_runner).__name__,
        persist_result=flow.persist_result,
        result_storage=_storage(flow.result_storage),
        result_serializer=_storage(flow.result_serializer),
        tasks=[_describe_task(item) for item in referenced if isinstance(item, Task)],
        subflows=[_describe_flow(item, seen) for item in referenced if _new_flow(item, seen)],
    )


def _new_flow(item: Any, seen: set[int]) -> bool:
    from prefect import Flow

    return isinstance(item, Flow) and id(item) not in seen  # a flow that calls itself is listed once


def _describe_task(task: Any) -> TaskStructure:
    return TaskStructure(
        name=task.name,
        retries=task.retries or 0,
        retry_delay_seconds=task.retry_delay_seconds,
        retry_jitter_factor=task.retry_jitter_factor,
        timeout_seconds=task.timeout_seconds,
        cache_policy=_cache_policy(getattr(task, "cache_policy", None)),
        cache_expiration=str(task.cache_expiration) if task.cache_expiration is not None else None,
        persist_result=task.persist_result,
        result_storage=_storage(task.result_storage),
        tags=sorted(task.tags),
    )


def _referenced(function: Any) -> Iterator[Any]:
    """Prefect tasks and flows the function's code looks up (globals, closures, module attributes)."""
    from prefect import Flow, Task

    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None:
        return
    namespace = dict(getattr(function, "__globals__", {}))
    closure = getattr(function, "__closure__", None) or ()
    for name, cell in zip(code.co_freevars, closure, strict=False):
        try:
            namespace[name] = cell.cell_contents
        except ValueError:  # an empty cell: the variable is not assigned yet
            continue
    names = list(dict.fromkeys(_names(code)))
    modules = [namespace[name] for name in names if isinstance(namespace.get(name), types.ModuleType)]
    seen: set[int] = set()
    for name in names:
        candidates = [namespace.get(name), *(getattr(module, name, None) for module in modules)]
        for value in candidates:
            if isinstance(value, (Task, Flow)) and id(value) not in seen:
                seen.add(id(value))
                yield value


def _names(code: types.CodeType) -> Iterator[str]:
    """Names the code (and the code nested in it) looks up, in the order the bytecode mentions them."""
    for instruction in dis.get_instructions(code):
        if isinstance(instruction.argval, types.CodeType):
            yield from _names(instruction.argval)
        elif instruction.opname.startswith("LOAD_") and isinstance(instruction.argval, str):
            yield instruction.argval
    yield from (*code.co_names, *code.co_freevars)  # anything an unusual opcode hid


def _cache_policy(policy: Any) -> str:
    if policy is None:
        return "none"
    policies = getattr(policy, "policies", None)
    if policies:
        return " + ".join(sorted(_cache_policy(item) for item in policies))  # order does not matter
    key_fn = getattr(policy, "cache_key_fn", None)
    if key_fn is not None:
        return f"cache_key_fn={getattr(key_fn, '__qualname__', stable_repr(key_fn))}"
    excluded = getattr(policy, "exclude", None)
    name = type(policy).__name__
    return f"{name}(exclude={sorted(excluded)})" if excluded else name


def _storage(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    name = getattr(value, "_block_document_name", None) or getattr(value, "basepath", None)
    return f"{type(value).__name__}({name})" if name else type(value).__name__


def _structure_lines(structure: FlowStructure, indent: str) -> list[str]:
    lines = [f"{indent}flow {structure.name}"]
    for field in dataclasses.fields(structure):
        if field.name in ("name", "tasks", "subflows"):
            continue
        lines += _field_lines(field.name, getattr(structure, field.name), indent + "  ")
    for task in structure.tasks:
        lines.append(f"{indent}  task {task.name}")
        for field in dataclasses.fields(task):
            if field.name != "name":
                lines += _field_lines(field.name, getattr(task, field.name), indent + "    ")
    for subflow in structure.subflows:
        lines += _structure_lines(subflow, indent + "  ")
    return lines


def _field_lines(name: str, value: Any, indent: str) -> list[str]:
    if not isinstance(value, dict) or not value:
        return [f"{indent}{name}: {stable_repr(value)}"]
    lines = [f"{indent}{name}:"]
    for key in sorted(value):
        lines += _field_lines(str(key), value[key], indent + "  ")
    return lines
