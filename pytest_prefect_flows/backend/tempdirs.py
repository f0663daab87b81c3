"""The session's temporary directories, and the removal of those whose process is gone."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

TEMP_PREFIX = "pytest-prefect-flows-"
# A temp dir named without its owner's pid (made before every one carried it) is stale after this:
# the only ones made so were a template build's or an import check's, which last seconds.
UNOWNED_STALE_AFTER = 3600.0


def owned_prefix() -> str:
    """The prefix of this process's temp dirs: `pytest-prefect-flows-<pid>-`, so a later session
    knows whether their owner is gone."""
    return f"{TEMP_PREFIX}{os.getpid()}-"


def remove_stale_temp_dirs(base: Path | None = None) -> list[Path]:
    """Remove temp dirs left by sessions whose process is gone (SIGKILL, killed xdist worker)."""
    base = Path(base or tempfile.gettempdir())
    removed = []
    for path in base.glob(f"{TEMP_PREFIX}*"):
        if path.is_dir() and _stale(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _stale(path: Path) -> bool:
    pid_text, dash, _ = path.name[len(TEMP_PREFIX) :].partition("-")
    if pid_text.isdigit() and dash:
        return not process_alive(int(pid_text))
    try:
        return time.time() - path.stat().st_mtime > UNOWNED_STALE_AFTER
    except OSError:
        return False


def remove_stale_partials(cache_dir: Path) -> list[Path]:
    """Remove half-written templates (`<name>.<pid>.partial`) of processes that are gone."""
    removed = []
    for path in cache_dir.glob("*.partial"):
        pid_text = path.name.rsplit(".", 2)[-2]
        if pid_text.isdigit() and not process_alive(int(pid_text)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed xdist worker stays a zombie until its parent reaps it; its temp dir is stale."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]
