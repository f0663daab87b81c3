"""The session's temporary directories, and the removal of those whose process is gone."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TEMP_PREFIX = "pytest-prefect-flows-"


def remove_stale_temp_dirs(base: Path | None = None) -> list[Path]:
    """Remove temp dirs left by sessions whose process is gone (SIGKILL, killed xdist worker)."""
    base = Path(base or tempfile.gettempdir())
    removed = []
    for path in base.glob(f"{TEMP_PREFIX}*-*"):
        pid_text = path.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
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
