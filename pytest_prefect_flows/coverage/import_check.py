"""`--prefect-check-imports`: import every discovered file in a subprocess, then check each flow.

The test process never imports a flow module for the check: a module imported here under a second
name would register its blocks twice and hand the tests another copy of its globals. The
subprocess gets the test process's `sys.path`, an isolated Prefect home and an API address on
which nothing listens; it imports each file under its unique module name (`ModuleInfo.name`) and
runs `gates.check_loaded` on what it finds.

Works without pytest::

    problems = check_imports(discover(["flows"], rootdir), rootdir)
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from pytest_prefect_flows.coverage.discovery import (
    Definition,
    Discovery,
    ModuleInfo,
    display_path,
    function_key,
    import_root,
    module_name,
    source_lines,
)
from pytest_prefect_flows.coverage.gates import Problem, check_loaded

DEAD_API_URL = "http://127.0.0.1:1/api"


def check_imports(discovery: Discovery, rootdir: Path | None = None) -> list[Problem]:
    """Problems found by importing `discovery`'s files in a fresh interpreter (parse errors included).

    `rootdir` (default: the current directory) is where the subprocess runs and what paths in
    problems are relative to: the one given to `discover`.
    """
    rootdir = Path(rootdir or Path.cwd())
    from pytest_prefect_flows.backend.environment import apply_to, isolation_env
    from pytest_prefect_flows.backend.tempdirs import owned_prefix

    with tempfile.TemporaryDirectory(prefix=owned_prefix()) as home:
        output = Path(home, "problems.json")
        payload = {
            "rootdir": str(rootdir),
            "sys_path": sys.path,
            "output": str(output),
            "modules": [vars(module) for module in discovery.modules],
        }
        env = dict(os.environ)
        apply_to(env, isolation_env(Path(home), DEAD_API_URL, None))
        result = subprocess.run(
            [sys.executable, "-m", __name__],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            env=env,
            cwd=rootdir,
            check=False,
        )
        if result.returncode != 0 or not output.exists():
            return [_crashed(result, rootdir)]
        data = json.loads(output.read_text(encoding="utf-8"))
    return [Problem(**problem) for problem in data["problems"]]


def _crashed(result: subprocess.CompletedProcess[str], rootdir: Path) -> Problem:
    return Problem(
        "import",
        "<import check>",
        str(rootdir),
        f"the import check's interpreter exited with status {result.returncode} before reporting "
        f"(a module that calls sys.exit or kills the process at import?):\n{result.stderr[-2000:]}",
    )


def import_modules(modules: list[ModuleInfo], rootdir: Path) -> Discovery:
    """Import each module under its name; the flows and tasks each defines, with their objects.

    Meant for a process of its own: it adds each module's import root to `sys.path`.
    """
    found = Discovery(paths=[], modules=modules)
    for module in modules:
        if module.error is None:
            _import(module)
        if module.error is None:
            _collect_definitions(sys.modules[module.name], module, found, rootdir)
    return found


def _import(module: ModuleInfo) -> None:
    root = str(import_root(module.file))
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        if module.name == module_name(Path(module.file)):
            importlib.import_module(module.name)
        if not _is_loaded_from(module):
            _import_by_path(module)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        module.error = _describe(exc)
        module.traceback = "".join(traceback.format_exception(exc))


def _is_loaded_from(module: ModuleInfo) -> bool:
    loaded = getattr(sys.modules.get(module.name), "__file__", None)
    return loaded is not None and os.path.samefile(loaded, module.file)


def _import_by_path(module: ModuleInfo) -> None:
    """A file whose dotted name another file took (or another module shadows), under its own name."""
    if module.name in sys.modules:  # e.g. `flows/logging.py` outside a package: keep the stdlib's
        module.name = f"_prefect_flows_import_check.{module.name}"
    spec = importlib.util.spec_from_file_location(module.name, module.file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module.file}")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module.name] = loaded
    spec.loader.exec_module(loaded)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


def _collect_definitions(module: Any, info: ModuleInfo, found: Discovery, rootdir: Path) -> None:
    from prefect import Flow, Task

    for value in list(vars(module).values()):
        kind = "flow" if isinstance(value, Flow) else "task" if isinstance(value, Task) else None
        key = function_key(value, rootdir)
        if kind is None or key is None or key.rpartition(":")[0] != display_path(info.file, rootdir):
            continue  # imported from elsewhere: counted where it is defined
        lines = source_lines(value)
        found.add(
            Definition(
                kind=kind,
                key=key,
                name=value.name,
                module=info.name,
                path=info.path,
                line=lines[0] if lines else 0,
                obj=value,
                retries=int(getattr(value, "retries", 0) or 0),
                lines=lines,
                file=info.file,
            )
        )


def main() -> None:
    payload = json.loads(sys.stdin.read())
    sys.path[:] = payload["sys_path"]
    modules = [ModuleInfo(**module) for module in payload["modules"]]
    problems = check_loaded(import_modules(modules, Path(payload["rootdir"])))
    data = {"problems": [vars(problem) for problem in problems]}
    Path(payload["output"]).write_text(json.dumps(data), encoding="utf-8")


if __name__ == "__main__":
    main()
