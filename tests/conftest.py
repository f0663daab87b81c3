"""Shared helpers for the plugin's own tests (pytester is enabled in pyproject's addopts)."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _pytest.pathlib import make_numbered_dir

from pytest_prefect_flows.backend import default_template_dir

if TYPE_CHECKING:
    from tests._forkserver import ForkServer

# pytester points HOME at a temporary directory, so every inline session would migrate a template
# database of its own (~6 s each) in a new per-user cache: share the real user's cache instead.
# test_harness.py's template test uses an empty cache of its own.
os.environ.setdefault("PYTEST_PREFECT_FLOWS_CACHE", str(default_template_dir()))


def record_long_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Sleeps of half a second or more by Prefect's engine are recorded (in whole seconds), not slept.

    Shows whether the engine waited out a retry delay without the test waiting, and without timing
    anything. Both `time.sleep` and `anyio.sleep` (Prefect 3.4's sync engine waits through it) are
    replaced; shorter sleeps, and any sleep outside the engine (the backend's own loops), stay real.
    """
    import anyio

    real_sleep, real_anyio_sleep = time.sleep, anyio.sleep
    slept: list[float] = []

    def engine_wait(seconds: float) -> bool:
        caller = sys._getframe(2).f_globals.get("__name__", "")
        if seconds < 0.5 or not caller.startswith("prefect.") or caller.startswith("prefect.server"):
            return False
        # the engine sleeps until the scheduled time: a busy machine takes a little off the delay
        slept.append(round(seconds))
        return True

    def sleep(seconds: float) -> None:
        # a polling caller (a flow retry waiting for the server) sleeps a little, so it does not spin
        real_sleep(0.05 if engine_wait(seconds) else seconds)

    async def anyio_sleep(delay: float, *args: object, **kwargs: object) -> object:
        return await real_anyio_sleep(0.05 if engine_wait(delay) else delay, *args, **kwargs)

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(anyio, "sleep", anyio_sleep)
    return slept


@pytest.fixture
def long_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_long_sleeps(monkeypatch)


fork_server_key = pytest.StashKey["ForkServer | None"]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Keep the environment as it was before the plugin isolated it, for the fork server."""
    from tests._forkserver import ForkServer

    usable = hasattr(os, "fork") and not os.environ.get("PYTEST_PREFECT_FLOWS_NO_FORKSERVER")
    config.stash[fork_server_key] = ForkServer(os.environ, Path.cwd()) if usable else None


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported (Prefect, the test modules) lives as long as the session: the garbage
    collector skips it, instead of walking it at each full collection (pytest runs two at the end of
    every `runpytest_inprocess` session)."""
    gc.freeze()


@pytest.fixture(autouse=True)
def _pytester_sessions_from_the_fork_server(request: pytest.FixtureRequest) -> None:
    """`pytester.runpytest_subprocess` forks a process that has already imported Prefect.

    Tests marked `fresh_interpreter` (or every test, with PYTEST_PREFECT_FLOWS_NO_FORKSERVER=1) start
    a new interpreter as pytester does by default.
    """
    server = request.config.stash.get(fork_server_key, None)
    if (
        server is None
        or "pytester" not in request.fixturenames
        or request.node.get_closest_marker("fresh_interpreter") is not None
    ):
        return
    pytester: pytest.Pytester = request.getfixturevalue("pytester")
    request.getfixturevalue("monkeypatch").setattr(
        pytester, "runpytest_subprocess", functools.partial(_run_forked, pytester, server)
    )


def _run_forked(
    pytester: pytest.Pytester, server: ForkServer, *args: str | os.PathLike[str], timeout: float | None = None
) -> pytest.RunResult:
    """What `Pytester.runpytest_subprocess` does, with the process forked from the fork server."""
    __tracebackhide__ = True
    basetemp = make_numbered_dir(root=pytester.path, prefix="runpytest-", mode=0o700)
    # anyio's pytest plugin was imported with Prefect by the fork server: pytest cannot rewrite its
    # asserts and says so, which a session run with `-W error` would turn into an error.
    argv = [
        f"--basetemp={basetemp}",
        *map(os.fspath, args),
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
    ]
    for plugin in pytester.plugins:
        argv[:0] = ["-p", str(plugin)]
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
    out, err = pytester.path / "stdout", pytester.path / "stderr"
    started = time.perf_counter()
    ret: int | pytest.ExitCode = server.run_pytest(argv, Path.cwd(), env, out, err, timeout)
    outlines = out.read_text(encoding="utf8").splitlines()
    errlines = err.read_text(encoding="utf8").splitlines()
    print("\n".join(outlines))
    print("\n".join(errlines), file=sys.stderr)
    with contextlib.suppress(ValueError):
        ret = pytest.ExitCode(ret)
    return pytest.RunResult(ret, outlines, errlines, time.perf_counter() - started)
