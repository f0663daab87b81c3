"""Which tasks a flow can call, read from its code (no run needed).

A task counts when the flow function names it, or names a function, subflow or module attribute
that does, followed through the user's own code (not into the standard library or installed
packages). A task the flow receives at run time (a parameter, `getattr`) is not seen.
"""

from __future__ import annotations

import sysconfig
import types
from collections.abc import Iterable, Iterator
from typing import Any

_LIBRARY_DIRS = tuple({sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")})


def callable_task_names(functions: Iterable[Any]) -> set[str]:
    """Names of the tasks reachable from these flow functions' code."""
    from prefect import Flow, Task

    names: set[str] = set()
    pending = [fn for fn in functions if isinstance(fn, types.FunctionType)]
    seen: set[int] = set()
    while pending:
        fn = pending.pop()
        if id(fn) in seen or _is_library(fn):
            continue
        seen.add(id(fn))
        for value in _referenced(fn):
            if isinstance(value, Task):
                names.add(value.name)
                continue
            function = value.fn if isinstance(value, Flow) else value
            if isinstance(function, types.FunctionType):
                pending.append(function)
    return names


def _referenced(fn: types.FunctionType) -> Iterator[Any]:
    """Globals, closure values, defaults and module attributes the function's code names."""
    names = set(_code_names(fn.__code__))
    for name in names:
        value = fn.__globals__.get(name)
        if isinstance(value, types.ModuleType):
            yield from (getattr(value, attribute, None) for attribute in names)
        else:
            yield value
    for cell in fn.__closure__ or ():
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell
            continue
    yield from fn.__defaults__ or ()
    yield from (fn.__kwdefaults__ or {}).values()


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # lambdas, comprehensions, nested functions
            yield from _code_names(const)


def _is_library(fn: types.FunctionType) -> bool:
    return fn.__code__.co_filename.startswith(_LIBRARY_DIRS)
