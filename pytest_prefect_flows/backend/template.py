"""The template database: migrated once per Prefect version and cached, copied for each session."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pytest_prefect_flows._compat import prefect_version
from pytest_prefect_flows.backend.environment import apply_to, isolation_env
from pytest_prefect_flows.backend.tempdirs import TEMP_PREFIX
from pytest_prefect_flows.exceptions import BackendError


def default_template_dir() -> Path:
    """Per-user cache shared by every project and pytester run (the template is per Prefect version)."""
    override = os.environ.get("PYTEST_PREFECT_FLOWS_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-prefect-flows"


def template_database(cache_dir: Path | None = None) -> Path:
    """Path of a migrated database for the installed Prefect version, built once and reused.

    Building runs the migrations (through the synchronous SQLite driver, see `_template`) and
    block registration in a subprocess (so nothing of the
    build's settings stays in this process) under a file lock (so xdist workers build it once).
    """
    cache_dir = Path(cache_dir or default_template_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    template = cache_dir / f"template-prefect-{prefect_version()}.db"
    if template.exists():
        return template
    with _file_lock(cache_dir / ".template.lock"):
        if not template.exists():
            _build_template(template)
    return template


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
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as home:
        env = {**os.environ}
        apply_to(env, isolation_env(Path(home), "http://127.0.0.1:1/api", partial))
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
