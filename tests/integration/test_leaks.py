"""No server, process or temp dir of the plugin outlives a session: interrupted, or with a killed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FLOW_MODULE = """
import os
import time
from pathlib import Path
from prefect import flow, task

@task
def double(x):
    return 2 * x

@task
def wait_for_ctrl_c():
    Path(os.environ["FLOW_STARTED_FILE"]).touch()
    time.sleep(120)

@flow
def small(x: int = 3):
    return double(x)

@flow
def long_running():
    wait_for_ctrl_c()
"""


@pytest.fixture
def inner_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR of the inner session: its temp dirs land here, and its processes carry it."""
    inner = tmp_path / "inner-tmp"
    inner.mkdir()
    monkeypatch.setenv("TMPDIR", str(inner))
    return inner


def plugin_temp_dirs(inner_tmpdir: Path) -> list[str]:
    return sorted(path.name for path in inner_tmpdir.glob("pytest-prefect-flows-*"))


def processes_of_session(inner_tmpdir: Path) -> list[int]:
    """Live processes started for the inner session (they inherited its TMPDIR)."""
    marker = f"TMPDIR={inner_tmpdir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(0.2)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="inspects processes through /proc")
def test_session_interrupted_during_a_flow_run_cleans_up(
    pytester: pytest.Pytester, inner_tmpdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = inner_tmpdir / "flow-started"
    monkeypatch.setenv("FLOW_STARTED_FILE", str(started))
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        from flows import long_running

        def test_waits(run_flow):
            run_flow(long_running)
        """
    )
    process = pytester.popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={inner_tmpdir}/b"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(started.exists, timeout=180)
        assert plugin_temp_dirs(inner_tmpdir) != []  # the session's home exists while it runs
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=120)[0].decode()
    finally:
        process.kill()
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert plugin_temp_dirs(inner_tmpdir) == []
    assert processes_of_session(inner_tmpdir) == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="inspects processes through /proc")
def test_killed_xdist_worker_leaves_nothing_behind(pytester: pytest.Pytester, inner_tmpdir: Path) -> None:
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        f"""
        import os, signal
        from pathlib import Path
        import pytest
        from flows import small

        @pytest.mark.parametrize("n", range(6))
        def test_runs(n, run_flow):
            assert run_flow(small, n).result() == 2 * n
            first_kill = Path({str(inner_tmpdir / "killed")!r})
            if n == 0 and not first_kill.exists():
                first_kill.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "-q", "-p", "no:cacheprovider", f"--basetemp={inner_tmpdir}/b"
    )
    result.stdout.fnmatch_lines(["worker 'gw*' crashed while running *test_runs[[]0[]]*"])
    result.assert_outcomes(passed=5, failed=1)
    assert plugin_temp_dirs(inner_tmpdir) == []
    assert processes_of_session(inner_tmpdir) == []
