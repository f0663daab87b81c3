"""Find every `@flow` and `@task` defined under the configured flow paths.

Each module is imported once (through `importlib`, so a module a test imports later is the same
object); an import error is captured with the module's path instead of stopping discovery.
Flows and tasks are identified by `function_key`: the module and qualified name of the decorated
function, which is the same for the discovered object, for `task.with_options(...)` copies and for
the `task` attribute of a run record.

Works without pytest::

    found = discover(["example_flows"], rootdir=Path.cwd())
    print([task.key for task in found.tasks], found.import_errors)
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import inspect
import sys
import traceback
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_prefect_flows.exceptions import UsageError

SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "build", "dist"})
DEFAULT_EXCLUDE = ("conftest.py", "test_*.py", "*_test.py")


def function_key(obj: Any) -> str | None:
    """`module:qualname` of a flow's or task's function (None for anything else)."""
    fn = getattr(obj, "fn", obj)
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    return f"{module}:{qualname}"


@dataclass
class ModuleInfo:
    """A module found under the flow paths, and the error it raised on import, if any."""

    name: str
    path: str
    error: str | None = None
    traceback: str | None = None


@dataclass(eq=False)
class Definition:
    """A discovered flow or task: where it is defined, and the Prefect object itself."""

    kind: str  # "flow" | "task"
    key: str
    name: str
    module: str
    path: str
    line: int
    obj: Any = field(repr=False)
    retries: int = 0
    lines: tuple[int, int] | None = None  # first and last line of the function's source

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Discovery:
    """Everything found under the flow paths."""

    paths: list[str]
    modules: list[ModuleInfo] = field(default_factory=list)
    flows: list[Definition] = field(default_factory=list)
    tasks: list[Definition] = field(default_factory=list)

    @property
    def import_errors(self) -> list[ModuleInfo]:
        return [module for module in self.modules if module.error is not None]

    def by_key(self) -> dict[str, Definition]:
        return {item.key: item for item in [*self.flows, *self.tasks]}


def discover(paths: Iterable[str], rootdir: Path, exclude: Iterable[str] = DEFAULT_EXCLUDE) -> Discovery:
    """Import every module under `paths` (dirs relative to `rootdir`, or dotted module names)."""
    paths = list(paths)
    found = Discovery(paths=paths)
    seen: set[str] = set()
    exclude = tuple(exclude)
    for entry in paths:
        for name, path in _modules_of(entry, rootdir, exclude):
            if name not in seen:
                seen.add(name)
                found.modules.append(_import(name, path, rootdir))
    for module in found.modules:
        if module.error is None:
            _collect_definitions(sys.modules[module.name], module.path, found)
    return found


def _modules_of(entry: str, rootdir: Path, exclude: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    """(module name, file) for each module an entry of `prefect_flow_paths` stands for."""
    candidate = (rootdir / entry).resolve()
    if candidate.is_dir():
        yield from _modules_in_dir(candidate, exclude)
    elif candidate.suffix == ".py" and candidate.is_file():
        yield _module_name(candidate), candidate
    elif entry.replace(".", "").replace("_", "").isalnum():
        yield from _modules_of_dotted(entry, rootdir, exclude)
    else:
        raise UsageError(_bad_entry(entry, rootdir))


def _bad_entry(entry: str, rootdir: Path) -> str:
    return (
        f"prefect_flow_paths entry {entry!r} is neither a directory or .py file under the rootdir "
        f"({rootdir}) nor an importable module name. Use a path relative to the rootdir "
        "(e.g. `example_flows`) or a dotted module name (e.g. `my_package.flows`)."
    )


def _modules_of_dotted(entry: str, rootdir: Path, exclude: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    _ensure_on_path(rootdir)
    try:
        spec = importlib.util.find_spec(entry)
    except (ImportError, ValueError):
        spec = None
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        raise UsageError(_bad_entry(entry, rootdir))
    if spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            yield from _modules_in_dir(Path(location), exclude)
    else:
        yield entry, Path(str(spec.origin))


def _modules_in_dir(directory: Path, exclude: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    for path in sorted(directory.rglob("*.py")):
        relative = path.relative_to(directory).parts
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in relative[:-1]):
            continue
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in exclude):
            continue
        yield _module_name(path), path


def _module_name(path: Path) -> str:
    """Dotted name as pytest's `prepend` import mode sees it: up through the enclosing packages."""
    parts = [] if path.name == "__init__.py" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file():
        parts.insert(0, directory.name)
        directory = directory.parent
    _ensure_on_path(directory)
    return ".".join(parts)


def _ensure_on_path(directory: Path) -> None:
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))


def _import(name: str, path: Path, rootdir: Path) -> ModuleInfo:
    shown = _display_path(path, rootdir)
    try:
        importlib.import_module(name)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return ModuleInfo(name, shown, _describe(exc), "".join(traceback.format_exception(exc)))
    return ModuleInfo(name, shown)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


def _display_path(path: Path, rootdir: Path) -> str:
    try:
        return str(path.resolve().relative_to(rootdir.resolve()))
    except ValueError:
        return str(path)


def _collect_definitions(module: types.ModuleType, path: str, found: Discovery) -> None:
    from prefect import Flow, Task

    for value in list(vars(module).values()):
        kind = "flow" if isinstance(value, Flow) else "task" if isinstance(value, Task) else None
        key = function_key(value)
        if kind is None or key is None or not key.startswith(module.__name__ + ":"):
            continue  # imported from elsewhere: counted where it is defined
        target = found.flows if kind == "flow" else found.tasks
        if any(existing.key == key for existing in target):
            continue
        lines = source_lines(value)
        target.append(
            Definition(
                kind=kind,
                key=key,
                name=value.name,
                module=module.__name__,
                path=path,
                line=lines[0] if lines else 0,
                obj=value,
                retries=int(getattr(value, "retries", 0) or 0),
                lines=lines,
            )
        )


def source_lines(obj: Any) -> tuple[int, int] | None:
    """First and last source line of a flow's or task's function (the `def`, not decorators)."""
    fn = inspect.unwrap(getattr(obj, "fn", obj))
    try:
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    offset = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "async def "))), 0)
    return start + offset, start + len(lines) - 1


def tasks_used_by(flow: Any) -> list[Any]:
    """Task objects a flow's function refers to by global name (`extract` or `module.extract`)."""
    from prefect import Task

    fn = inspect.unwrap(flow.fn)
    global_ns = getattr(fn, "__globals__", {})
    names = _code_names(fn.__code__)
    used: list[Any] = []
    for name in names:
        value = global_ns.get(name)
        candidates = (
            [getattr(value, attr, None) for attr in names] if isinstance(value, types.ModuleType) else [value]
        )
        used += [item for item in candidates if isinstance(item, Task) and item not in used]
    return used


def _code_names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _code_names(const)
    return list(dict.fromkeys(names))
