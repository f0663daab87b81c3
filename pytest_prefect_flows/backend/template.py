"""The template database: one per Prefect version, cached, copied for each session.

A missing template comes from the package when one is shipped for the installed Prefect
(`shipped`), else it is built (Prefect's migrations and block registration, in a subprocess).
`PYTEST_PREFECT_FLOWS_TEMPLATE=build` builds it even when one is shipped.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pytest_prefect_flows._compat import prefect_version
from pytest_prefect_flows.backend import shipped
from pytest_prefect_flows.backend.environment import apply_to, isolation_env
from pytest_prefect_flows.backend.tempdirs import owned_prefix
from pytest_prefect_flows.exceptions import BackendError

TEMPLATE_SOURCE_VARIABLE = "PYTEST_PREFECT_FLOWS_TEMPLATE"
# The build subprocess exits when the process of this pid is gone (`_template.exit_with_parent`).
PARENT_PID_VARIABLE = "PYTEST_PREFECT_FLOWS_BUILD_PARENT"
# `auto`: the template shipped for the installed Prefect if there is one, else built; `build`: built.
TEMPLATE_SOURCES = ("auto", "build")


def default_template_dir() -> Path:
    """Per-user cache shared by every project and pytester run (the template is per Prefect version)."""
    override = os.environ.get("PYTEST_PREFECT_FLOWS_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-prefect-flows"


def template_source() -> str:
    """Where a missing template comes from: `PYTEST_PREFECT_FLOWS_TEMPLATE`, default `auto`."""
    value = os.environ.get(TEMPLATE_SOURCE_VARIABLE, "").strip().lower() or "auto"
    if value not in TEMPLATE_SOURCES:
        raise BackendError(
            f"{TEMPLATE_SOURCE_VARIABLE}={value!r} is not a template source: unset it (or set `auto`) "
            "to use the template shipped for the installed Prefect, or set `build` to build it "
            "with Prefect's migrations."
        )
    return value


def template_database(cache_dir: Path | None = None) -> Path:
    """Path of a migrated database for the installed Prefect version, made once and reused.

    It is the shipped template when there is one for the installed Prefect (decompressed in
    milliseconds), else built: the migrations (through the synchronous SQLite driver, see
    `_template`) and block registration run in a subprocess, so nothing of the build's settings
    stays in this process. Either happens under a file lock, so xdist workers make it once, and
    the file appears whole or not at all.
    """
    source = template_source()
    cache_dir = Path(cache_dir or default_template_dir())
    version = prefect_version()
    template = cache_dir / f"template-prefect-{version}.db"
    if template.is_file():
        return template
    _make_cache(cache_dir)
    with _file_lock(cache_dir / ".template.lock"):
        if not template.exists():
            ready_made = shipped.shipped_template(version) if source == "auto" else None
            if ready_made is not None:
                shipped.materialise(ready_made, template)
            else:
                _build_template(template)
    return template


def dump_template(directory: Path) -> Path:
    """Build the installed Prefect's template with Prefect's own migrations and write it into
    `directory` as a shipped template (`python -m pytest_prefect_flows._template dump DIR`)."""
    version = prefect_version()
    with tempfile.TemporaryDirectory(prefix=owned_prefix()) as scratch:
        database = Path(scratch) / "template.db"
        _build_template(database, "migrations")
        return shipped.write_shipped(database, version, directory)


def _make_cache(cache_dir: Path) -> None:
    """Make `cache_dir`, writable; an error (a file in its place, no right to write) names the fix."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / ".template.lock").touch()
    except OSError as exc:
        raise BackendError(
            f"The template cache {cache_dir} cannot be written ({type(exc).__name__}: {exc.strerror}), "
            "so the isolated Prefect backend has no database to start from. Point "
            "PYTEST_PREFECT_FLOWS_CACHE (or XDG_CACHE_HOME) at a directory this process can write."
        ) from exc


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the atomic rename still keeps it safe
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_template(template: Path, how: str = "auto") -> None:
    """Build the template at `template`: `how` is a build of `_template.BUILDS`."""
    partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix=owned_prefix()) as home:
        env = {**os.environ}
        apply_to(env, isolation_env(Path(home), "http://127.0.0.1:1/api", partial))
        env[PARENT_PID_VARIABLE] = str(os.getpid())
        result = subprocess.run(
            [sys.executable, "-m", "pytest_prefect_flows._template", how],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackendError(
            "Could not build the template Prefect database "
            f"(prefect {prefect_version()}):\n{result.stderr[-3000:]}\n"
            "Check that `prefect server` can start in this environment "
            "(e.g. `python -c 'import prefect.server.api.server'`)."
        )
    os.replace(partial, template)
