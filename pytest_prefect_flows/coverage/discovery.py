"""Find every `@flow` and `@task` defined under the configured flow paths, without importing them.

Discovery reads the source files (`ast`): it imports no user module, adds nothing to `sys.path`
and registers nothing, so the test session sees exactly what it would without the plugin. Every
file gets its own module name (`ModuleInfo.name`, unique even for ten `flow.py` files in folders
without `__init__.py`); a file that cannot be parsed is kept with its error. The import check
(`import_check.py`) imports the files in a subprocess.

Flows and tasks are identified by `function_key`: the function's source file (relative to the
rootdir) and first line, decorators included, which is what the function's code object carries.
A run of a discovered task therefore matches it however the test imported the module (`flows.x`,
`x`, or a file loaded by path), and `task.with_options(...)` copies match their original.

Works without pytest::

    found = discover(["example_flows"], rootdir=Path.cwd())
    print([task.key for task in found.tasks], found.import_errors)
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import os
import sys
import tempfile
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_prefect_flows.exceptions import UsageError

SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "build", "dist"})
DEFAULT_EXCLUDE = ("conftest.py", "test_*.py", "*_test.py")
_KINDS = ("flow", "task")
_key_cache: dict[tuple[types.CodeType, str], str] = {}


def function_key(obj: Any, rootdir: Path | str | None = None) -> str | None:
    """`path:line` of a flow's or task's function (None for anything else).

    `path` is the source file, relative to `rootdir` when inside it; `line` is the function's first
    line, its first decorator when it has one (the code object's `co_firstlineno`).
    """
    fn = _unwrap(obj)
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        return None
    cache_key = (code, str(rootdir or ""))
    key = _key_cache.get(cache_key)
    if key is None:
        key = location_key(_source_file(fn, code), code.co_firstlineno, rootdir)
        _key_cache[cache_key] = key
    return key


def _source_file(fn: Any, code: types.CodeType) -> str:
    """The code's file; for code rebuilt by value (cloudpickle, e.g. on Dask), its module's file."""
    if not code.co_filename.startswith("<"):
        return code.co_filename
    module_file = getattr(sys.modules.get(getattr(fn, "__module__", "") or ""), "__file__", None)
    return module_file or code.co_filename


def location_key(filename: str | Path, first_line: int, rootdir: Path | str | None = None) -> str:
    return f"{display_path(filename, rootdir)}:{first_line}"


def display_path(filename: str | Path, rootdir: Path | str | None = None) -> str:
    """The file relative to `rootdir` when inside it (with `/`), else its absolute path.

    With a `rootdir`, a file in the temporary directory outside it (a flow a test wrote to its
    `tmp_path`) is `<tmp>/name.py`: reports never show a temporary directory's random path.
    """
    resolved = os.path.realpath(filename)
    if rootdir is not None:
        relative = os.path.relpath(resolved, os.path.realpath(rootdir))
        if not relative.startswith(".."):
            return Path(relative).as_posix()
        if not os.path.relpath(resolved, _temp_dir()).startswith(".."):
            return f"<tmp>/{Path(resolved).name}"
    return Path(resolved).as_posix()


@functools.lru_cache(maxsize=1)
def _temp_dir() -> str:
    return os.path.realpath(tempfile.gettempdir())


def _unwrap(obj: Any) -> Any:
    fn = getattr(obj, "fn", obj)
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


@dataclass
class ModuleInfo:
    """A file found under the flow paths, its unique module name, and its error, if any."""

    name: str
    path: str  # as reports show it (relative to the rootdir)
    error: str | None = None
    traceback: str | None = None
    file: str = ""  # absolute


@dataclass(eq=False)
class Definition:
    """A discovered flow or task: where it is defined (and, after an import, the object itself)."""

    kind: str  # "flow" | "task"
    key: str
    name: str
    module: str
    path: str
    line: int  # the `def` line
    obj: Any = field(default=None, repr=False)
    retries: int = 0
    lines: tuple[int, int] | None = None  # `def` line and last line of the function
    file: str = ""  # absolute
    function: str = ""  # qualified name of the decorated function
    first_line: int = 0  # first line, decorators included (the code object's `co_firstlineno`)

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Discovery:
    """Everything found under the flow paths (or the deployment entrypoints of `prefect.yaml`)."""

    paths: list[str]
    modules: list[ModuleInfo] = field(default_factory=list)
    flows: list[Definition] = field(default_factory=list)
    tasks: list[Definition] = field(default_factory=list)
    source: str = "flow_paths"  # or "prefect.yaml"
    notes: list[str] = field(default_factory=list)

    @property
    def import_errors(self) -> list[ModuleInfo]:
        """Files that could not be read or parsed (and, after an import check, imported)."""
        return [module for module in self.modules if module.error is not None]

    def by_key(self) -> dict[str, Definition]:
        return {item.key: item for item in [*self.flows, *self.tasks]}

    def add(self, definition: Definition) -> None:
        target = self.flows if definition.kind == "flow" else self.tasks
        if all(existing.key != definition.key for existing in target):
            target.append(definition)


def discover(paths: Iterable[str], rootdir: Path, exclude: Iterable[str] = DEFAULT_EXCLUDE) -> Discovery:
    """Read every module under `paths` (dirs or files relative to `rootdir`, or dotted module names)."""
    paths = list(paths)
    found = Discovery(paths=paths)
    exclude = tuple(exclude)
    files = list(dict.fromkeys(file for entry in paths for file in _files_of(entry, rootdir, exclude)))
    for file, name in zip(files, unique_module_names(files, rootdir), strict=True):
        module = ModuleInfo(name, display_path(file, rootdir), file=str(file))
        found.modules.append(module)
        for definition in read_definitions(module, rootdir):
            found.add(definition)
    return found


def discover_deployments(rootdir: Path) -> Discovery:
    """The flows named by the entrypoints of every `prefect.yaml` under `rootdir`."""
    from pytest_prefect_flows.prefect_yaml import find_files, load_project

    found = Discovery(paths=[], source="prefect.yaml")
    for yaml_file in find_files(rootdir):
        found.paths.append(display_path(yaml_file, rootdir))
        try:
            project = load_project(yaml_file)
        except UsageError as exc:
            found.notes.append(f"skipped {exc}")
            continue
        for deployment in project.deployments:
            _add_entrypoint_flow(found, deployment, rootdir)
    return found


def _add_entrypoint_flow(found: Discovery, deployment: Any, rootdir: Path) -> None:
    path, function = deployment.entrypoint_path, deployment.entrypoint_function
    label = f"{display_path(deployment.file, rootdir)}::{deployment.name}"
    if path is None or not path.is_file():
        found.notes.append(f"{label}: entrypoint {deployment.entrypoint!r} names no file")
        return
    module = ModuleInfo(module_name(path), display_path(path, rootdir), file=str(path))
    flows = [item for item in read_definitions(module, rootdir) if item.kind == "flow"]
    if module.error is not None:
        found.modules.append(module)
        return
    matching = [item for item in flows if item.function == function]
    if not matching:
        found.notes.append(f"{label}: no @flow named {function!r} in {module.path}")
    for definition in matching:
        found.add(definition)


def _files_of(entry: str, rootdir: Path, exclude: tuple[str, ...]) -> Iterator[Path]:
    """Each file an entry of `prefect_flow_paths` stands for."""
    candidate = (rootdir / entry).resolve()
    if candidate.is_dir():
        yield from _files_in_dir(candidate, exclude)
    elif candidate.suffix == ".py" and candidate.is_file():
        yield candidate
    elif entry.replace(".", "").replace("_", "").isalnum():
        yield from _files_of_dotted(entry, rootdir, exclude)
    else:
        raise UsageError(_bad_entry(entry, rootdir))


def _bad_entry(entry: str, rootdir: Path) -> str:
    return (
        f"prefect_flow_paths entry {entry!r} is neither a directory or .py file under the rootdir "
        f"({rootdir}) nor an importable module name. Use a path relative to the rootdir "
        "(e.g. `example_flows`) or a dotted module name (e.g. `my_package.flows`)."
    )


def _files_of_dotted(entry: str, rootdir: Path, exclude: tuple[str, ...]) -> Iterator[Path]:
    """A dotted module name, looked up on `sys.path` without importing anything."""
    relative = Path(*entry.split("."))
    for base in [rootdir, *(Path(item or ".") for item in sys.path)]:
        if (base / relative).is_dir():
            yield from _files_in_dir((base / relative).resolve(), exclude)
            return
        if (base / relative).with_suffix(".py").is_file():
            yield (base / relative).with_suffix(".py").resolve()
            return
    raise UsageError(_bad_entry(entry, rootdir))


def _files_in_dir(directory: Path, exclude: tuple[str, ...]) -> Iterator[Path]:
    for path in sorted(directory.rglob("*.py")):
        relative = path.relative_to(directory).parts
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in relative[:-1]):
            continue
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in exclude):
            continue
        yield path


def module_name(path: Path) -> str:
    """Dotted name as pytest's `prepend` import mode sees it: up through the enclosing packages."""
    return ".".join(_module_parts(path)[1])


def module_root(path: Path) -> tuple[Path, str]:
    """The directory `path`'s dotted module name imports from, and that name."""
    directory, parts = _module_parts(path)
    return directory, ".".join(parts)


def _module_parts(path: Path) -> tuple[Path, list[str]]:
    """The directory a module is imported from, and its dotted name's parts."""
    parts = [] if path.name == "__init__.py" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file():
        parts.insert(0, directory.name)
        directory = directory.parent
    return directory, parts


def import_root(path: Path | str) -> Path:
    """The directory from which `path` imports under its dotted name (above its packages)."""
    return _module_parts(Path(path))[0]


def unique_module_names(files: list[Path], rootdir: Path) -> list[str]:
    """One module name per file: its dotted name, or its path from the rootdir when that is taken."""
    names: list[str] = []
    for file in files:
        name = module_name(file)
        if name in names:
            name = _path_name(file, rootdir, taken=names)
        names.append(name)
    return names


def _path_name(file: Path, rootdir: Path, taken: list[str]) -> str:
    relative = Path(display_path(file, rootdir)).with_suffix("")
    parts = [
        part if part.isidentifier() else "_" + "".join(c if c.isalnum() else "_" for c in part)
        for part in relative.parts
        if part not in ("", "/")
    ]
    name = ".".join(parts)
    suffix = 2
    while name in taken:
        name, suffix = f"{'.'.join(parts)}_{suffix}", suffix + 1
    return name


def read_definitions(module: ModuleInfo, rootdir: Path) -> list[Definition]:
    """The flows and tasks a file defines, read from its source; a parse error goes to `module.error`."""
    try:
        tree = ast.parse(Path(module.file).read_bytes(), filename=module.file)
    except SyntaxError as exc:
        module.error = f"SyntaxError: {exc.msg} (line {exc.lineno})"
        return []
    except OSError as exc:  # its strerror: the message would repeat the file's absolute path
        module.error = f"{type(exc).__name__}: {exc.strerror or exc}"
        return []
    except ValueError as exc:
        module.error = f"{type(exc).__name__}: {exc}"
        return []
    reader = _SourceReader(module, rootdir, _prefect_names(tree))
    reader.read(tree.body, prefix="")
    return reader.found


def _prefect_names(tree: ast.Module) -> dict[str, str]:
    """Local names of `flow` / `task` ("flow"/"task") and of the `prefect` module ("prefect")."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "prefect":
            names.update(
                {alias.asname or alias.name: alias.name for alias in node.names if alias.name in _KINDS}
            )
        elif isinstance(node, ast.Import):
            names.update(
                {alias.asname or "prefect": "prefect" for alias in node.names if alias.name == "prefect"}
            )
    return names


class _SourceReader:
    def __init__(self, module: ModuleInfo, rootdir: Path, names: dict[str, str]) -> None:
        self.module, self.rootdir, self.names = module, rootdir, names
        self.found: list[Definition] = []
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def read(self, body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[prefix + node.name] = node
                for decorator in node.decorator_list:
                    self._maybe_add(decorator, node, prefix)
            elif isinstance(node, ast.ClassDef):
                self.read(node.body, prefix=f"{prefix}{node.name}.")
            elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
                self._maybe_add_call(node.value, prefix)
            elif isinstance(node, ast.If | ast.Try):
                self.read(node.body, prefix)

    def _kind(self, expr: ast.expr) -> tuple[str | None, ast.Call | None]:
        """("flow"|"task"|None, the call holding the options) of `flow`, `flow(...)`, `prefect.flow`."""
        call = expr if isinstance(expr, ast.Call) else None
        target = call.func if call is not None else expr
        if isinstance(target, ast.Name) and self.names.get(target.id) in _KINDS:
            return self.names[target.id], call
        if (
            isinstance(target, ast.Attribute)
            and target.attr in _KINDS
            and isinstance(target.value, ast.Name)
            and self.names.get(target.value.id) == "prefect"
        ):
            return target.attr, call
        return None, None

    def _maybe_add(
        self, decorator: ast.expr, node: ast.FunctionDef | ast.AsyncFunctionDef, prefix: str
    ) -> None:
        kind, call = self._kind(decorator)
        if kind is not None:
            self._add(kind, call, node, prefix + node.name)

    def _maybe_add_call(self, value: ast.Call, prefix: str) -> None:
        """`extract = task(extract_rows)` and `extract = task(retries=2)(extract_rows)`."""
        kind, inner = self._kind(value.func)
        function = value.args[0] if value.args else None
        if kind is None or not isinstance(function, ast.Name):
            return
        node = self.functions.get(prefix + function.id)
        if node is not None:
            self._add(kind, inner or value, node, prefix + function.id)

    def _add(
        self, kind: str, options: ast.Call | None, node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str
    ) -> None:
        first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
        keywords = {kw.arg: kw.value for kw in (options.keywords if options else []) if kw.arg}
        name = _constant(keywords.get("name"), str) or (
            node.name.replace("_", "-") if kind == "flow" else node.name
        )
        self.found.append(
            Definition(
                kind=kind,
                key=location_key(self.module.file, first, self.rootdir),
                name=name,
                module=self.module.name,
                path=self.module.path,
                line=node.lineno,
                retries=_constant(keywords.get("retries"), int) or 0,
                lines=(node.lineno, node.end_lineno or node.lineno),
                file=self.module.file,
                function=qualname,
                first_line=first,
            )
        )


def _constant(node: ast.expr | None, kind: type[Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, kind) and not isinstance(node.value, bool):
        return node.value
    return None


def source_lines(obj: Any) -> tuple[int, int] | None:
    """First and last source line of a flow's or task's function (the `def`, not decorators)."""
    import inspect

    fn = inspect.unwrap(getattr(obj, "fn", obj))
    try:
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    offset = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "async def "))), 0)
    return start + offset, start + len(lines) - 1


def tasks_used_by(flow: Any) -> list[Any]:
    """Task objects a flow's function refers to by global name (`extract` or `module.extract`)."""
    import inspect

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
