"""Which flow and task functions ran at all, to tell "tested through `.fn(...)`" from "never run".

A flow or task whose function ran but never as a flow or task run has the status `direct` in the
report. The watch keys functions by their code's file and first line, as discovery does:

- Python 3.12+: `sys.monitoring`, a callback on each code object's first start, disabled right
  after, so the cost is one call per function the process ever runs; any call counts.
- Python 3.10 and 3.11: no `sys.monitoring`, and a profile or trace function costs far more than
  a flow run is worth (`sys.setprofile` made a flow 2.6 times slower: `benchmarks/direct_watch.py`).
  Instead, reading `.fn` of a Prefect `Task` or `Flow` outside Prefect's own code (a test's
  `extract.fn(rows)`, a flow calling `other.fn()`) counts: while the watch is entered, `fn` is a
  data descriptor on those two classes that returns the very function Prefect stored (same object,
  same behaviour) and notes it. The function called under another name (not through `.fn`) is not
  seen there; `pytest --cov` line data still is (`ran_per_line_coverage`).

Works without pytest::

    with FunctionWatch({("/src/flows/etl.py", 12): "flows/etl.py:12"}) as watch:
        etl.extract.fn()
    watch.ran  # {"flows/etl.py:12"}
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from types import CodeType, FrameType, ModuleType
from typing import Any

from pytest_prefect_flows._import_hook import AfterImport

# sys.monitoring tool ids left to other tools: debugger 0, coverage 1, profiler 2, optimizer 5.
_TOOL_IDS = (4, 3)
_TOOL_NAME = "pytest-prefect-flows"
# Where Prefect defines the classes whose `.fn` is watched on Python < 3.12.
_CLASSES = (("prefect.tasks", "Task"), ("prefect.flows", "Flow"))
# Readers of `.fn` that are not a direct call: Prefect's engine (a flow or task run) and this plugin.
_INTERNAL = ("prefect.", "pytest_prefect_flows.")


class FunctionWatch:
    """Records the keys of the watched functions whose code started (or whose `.fn` was read)."""

    def __init__(self, functions: dict[tuple[str, int], str]) -> None:
        self.functions = {(os.path.realpath(file), line): key for (file, line), key in functions.items()}
        self.names = {os.path.basename(file) for file, _ in self.functions}
        self.ran: set[str] = set()
        self._tool: int | None = None
        self._hooks: list[AfterImport] = []
        self._patched: list[type] = []
        # co_filename as code objects carry it -> the watched first lines in that file (empty: none)
        self._files: dict[str, dict[int, str]] = {}

    def __enter__(self) -> FunctionWatch:
        if not self.functions:
            return self
        if hasattr(sys, "monitoring"):
            self._monitor()
            return self
        for module_name, class_name in _CLASSES:
            module = sys.modules.get(module_name)
            if module is not None:
                self._watch_fn_of(getattr(module, class_name))
            else:
                hook = AfterImport(module_name, functools.partial(self._patch, class_name=class_name))
                self._hooks.append(hook.__enter__())
        return self

    def _monitor(self) -> None:
        monitoring: Any = sys.monitoring  # type: ignore[attr-defined]
        tool = next((tool for tool in _TOOL_IDS if monitoring.get_tool(tool) is None), None)
        if tool is None:
            return  # every spare id taken: fall back to coverage.py's data
        monitoring.use_tool_id(tool, _TOOL_NAME)
        monitoring.register_callback(tool, monitoring.events.PY_START, self._started)
        monitoring.set_events(tool, monitoring.events.PY_START)
        self._tool = tool

    def _started(self, code: CodeType, offset: int) -> Any:
        self.note(code)
        return sys.monitoring.DISABLE  # type: ignore[attr-defined]

    def note(self, code: CodeType) -> None:
        """Record `code`'s function as run if it is watched."""
        lines = self._files.get(code.co_filename)
        if lines is None:
            lines = self._files[code.co_filename] = self._watched_lines(code.co_filename)
        key = lines.get(code.co_firstlineno) if lines else None
        if key is not None:
            self.ran.add(key)

    def _watched_lines(self, filename: str) -> dict[int, str]:
        if os.path.basename(filename) not in self.names:
            return {}
        path = os.path.realpath(filename)
        return {line: key for (file, line), key in self.functions.items() if file == path}

    def _patch(self, module: ModuleType, class_name: str) -> None:
        self._watch_fn_of(getattr(module, class_name))

    def _watch_fn_of(self, cls: type) -> None:
        if "fn" not in vars(cls):  # `fn` is an instance attribute; anything else is left alone
            type.__setattr__(cls, "fn", _FnAttribute(self))
            self._patched.append(cls)

    def __exit__(self, *exc_info: object) -> None:
        for hook in self._hooks:
            hook.__exit__()
        self._hooks.clear()
        for cls in self._patched:
            if isinstance(vars(cls).get("fn"), _FnAttribute):
                type.__delattr__(cls, "fn")
        self._patched.clear()
        if self._tool is None:
            return
        monitoring: Any = sys.monitoring  # type: ignore[attr-defined]
        monitoring.set_events(self._tool, 0)
        monitoring.register_callback(self._tool, monitoring.events.PY_START, None)
        monitoring.free_tool_id(self._tool)
        self._tool = None


class _FnAttribute:
    """`task.fn` / `flow.fn`: the function in the instance's `__dict__`, noted when user code reads it."""

    def __init__(self, watch: FunctionWatch) -> None:
        self.watch = watch

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            raise AttributeError(f"type object {getattr(owner, '__name__', owner)!r} has no attribute 'fn'")
        return self.read(instance, sys._getframe(1))

    def read(self, instance: Any, reader: FrameType) -> Any:
        """`instance.fn`, noted when the code reading it (`reader`) is not Prefect's or the plugin's."""
        try:
            fn = vars(instance)["fn"]
        except KeyError:
            raise AttributeError(f"{type(instance).__name__!r} object has no attribute 'fn'") from None
        module = reader.f_globals.get("__name__", "")
        if module != "prefect" and not module.startswith(_INTERNAL):
            code = getattr(inspect.unwrap(fn), "__code__", None)
            if isinstance(code, CodeType):
                self.watch.note(code)
        return fn

    def __set__(self, instance: Any, value: Any) -> None:
        vars(instance)["fn"] = value

    def __delete__(self, instance: Any) -> None:
        del vars(instance)["fn"]


def ran_per_line_coverage(line_coverage: dict[str, dict[str, Any]], keys: set[str]) -> set[str]:
    """Keys among `keys` whose body coverage.py saw executing (any line after the `def`)."""
    return {key for key in keys if key in line_coverage and line_coverage[key]["executed"]}
