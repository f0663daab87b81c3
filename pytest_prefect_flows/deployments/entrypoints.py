"""Load the flow a deployment's entrypoint names, with Prefect's `load_flow_from_entrypoint`.

A file inside a package is loaded by its dotted module path (`example_flows.etl.etl_pipeline`), which
Prefect's loader also accepts: the test process then holds one copy of the module, the one tests
import, so run records, faults and coverage see the same flow and task objects. A standalone script
is loaded by its path, as `prefect deploy` does.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_prefect_flows.exceptions import UsageError


class EntrypointError(UsageError):
    """The entrypoint does not resolve to a flow; the message says why and what to do."""


def split_entrypoint(entrypoint: Any) -> tuple[str, str]:
    """`path/to/file.py:function` as (path, function); a clear error for anything else."""
    if not isinstance(entrypoint, str) or not entrypoint.strip():
        raise EntrypointError(
            "missing: add `entrypoint: path/to/file.py:flow_function` (relative to the prefect.yaml file)."
        )
    path, sep, function = entrypoint.rpartition(":")
    if not sep or not path.endswith(".py") or not function:
        raise EntrypointError(
            f"{entrypoint!r} is not `path/to/file.py:flow_function`; write the file's path, a colon "
            "and the name of the @flow function."
        )
    return path, function


def load_flow(entrypoint: Any, base_dir: Path) -> Any:
    """The `Flow` object `entrypoint` (`file.py:function`, relative to `base_dir`) names."""
    from prefect import Flow

    path, function = split_entrypoint(entrypoint)
    file = (base_dir / path).resolve()
    if not file.is_file():
        raise EntrypointError(
            f"{entrypoint!r}: no file {file}. Entrypoints are relative to the directory of the "
            "prefect.yaml file; fix the path."
        )
    prefect_entrypoint, import_root = _prefect_entrypoint(file, function)
    with _importable_from(import_root):
        obj = _load(prefect_entrypoint, entrypoint)
    if not isinstance(obj, Flow):
        raise EntrypointError(
            f"{entrypoint!r} names {type(obj).__name__} {function!r}, not a flow; decorate it with "
            "@flow or point the entrypoint at the @flow function."
        )
    return obj


def _prefect_entrypoint(file: Path, function: str) -> tuple[str, Path | None]:
    """Prefect's entrypoint for `file`, and the directory its dotted module path imports from."""
    from pytest_prefect_flows.coverage.discovery import module_root

    if not (file.parent / "__init__.py").is_file():
        return f"{file}:{function}", None
    directory, name = module_root(file)
    return f"{name}.{function}", directory


@contextlib.contextmanager
def _importable_from(directory: Path | None) -> Iterator[None]:
    """`directory` on `sys.path` while the module is imported; the session's `sys.path` is restored."""
    entry = str(directory) if directory is not None else None
    if entry is None or entry in sys.path:
        yield
        return
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _load(entrypoint: str, shown: str) -> Any:
    from prefect.exceptions import MissingFlowError, ScriptError
    from prefect.flows import load_flow_from_entrypoint

    try:
        return load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
    except ScriptError as exc:
        cause: BaseException | None = exc.user_exc
    except MissingFlowError as exc:
        raise EntrypointError(
            f"{shown!r}: {str(exc).strip()} Point the entrypoint at a @flow function."
        ) from None
    except Exception as exc:
        cause = exc
    raise EntrypointError(
        f"{shown!r}: importing the file raised {_describe(cause)}; fix the module so that it imports."
    )


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "an error"
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"
