"""A session killed during a cold template build: the build dies with it, and the next session
removes what it left (the half-written template, the temp dirs of processes that are gone)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_prefect_flows.backend.tempdirs import TEMP_PREFIX, process_alive

FLOW_TEST = """
from prefect import flow

@flow
def small():
    return 1

def test_small():
    assert small() == 1
"""


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _template_build_of(session: subprocess.Popen[bytes]) -> int:
    """The pid of the session's template build subprocess, once it runs."""
    deadline = time.monotonic() + 300  # a bound on a stuck session, not a speed claim
    while time.monotonic() < deadline and session.poll() is None:
        for child in _children(session.pid):
            if b"pytest_prefect_flows._template" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        time.sleep(0.05)
    raise AssertionError("the session never started a template build")


def _dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from /proc")
def test_a_session_killed_during_a_cold_build_leaves_nothing_behind(pytester: pytest.Pytester) -> None:
    cache, tmp = pytester.path / "cache", pytester.path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTEST_PREFECT_FLOWS_CACHE": str(cache), "TMPDIR": str(tmp)}
    pytester.makepyfile(test_small=FLOW_TEST)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    session = subprocess.Popen(
        command,
        cwd=pytester.path,
        env={**env, "PYTEST_PREFECT_FLOWS_TEMPLATE": "build"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    build = _template_build_of(session)
    session.kill()
    session.wait()

    deadline = time.monotonic() + 60  # the build's watch looks every 0.2 s; a bound, not a claim
    while process_alive(build) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(build), "the template build outlived the session that started it"

    dead = _dead_pid()
    left = [
        cache / f"template-prefect-0.0.db.{dead}.partial",
        tmp / f"{TEMP_PREFIX}{dead}-abc",
        tmp / f"{TEMP_PREFIX}k2j4_x1q",  # named by an older release, without its owner's pid
    ]
    left[0].write_text("half a database")
    left[1].mkdir()
    left[2].mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(left[2], (two_hours_ago, two_hours_ago))
    assert list(tmp.glob(f"{TEMP_PREFIX}{session.pid}-*")), "the killed session left its temp dir"

    result = subprocess.run(command, cwd=pytester.path, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(cache.glob("*.partial")) == []
    assert list(tmp.glob(f"{TEMP_PREFIX}*")) == []
