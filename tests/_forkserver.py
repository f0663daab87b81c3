"""Run pytester's subprocess sessions from a fork server that has imported pytest and Prefect once.

Each `pytester.runpytest_subprocess(...)` of the plugin's own tests starts a new pytest session in
a new process, as users run it. Most of that process's time went into importing Prefect and its API
server (several seconds each, dozens of times per suite). Here a `multiprocessing` fork server
imports them once, before the plugin touched the environment, and every session is a fork of it:
a process of its own with the test's environment, working directory, standard streams and exit
code, in which pytest starts from scratch (plugins, conftests, the isolated backend).

A test that needs an interpreter that never imported Prefect is marked `fresh_interpreter`.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# No pytest plugin here (xdist, syrupy, ...): pytest must import those itself to rewrite their asserts.
# The modules after Prefect's are what every session imported again (from source, when Python writes
# no bytecode): ~1.3 of a session's 3 s of CPU. The multiprocessing fork server skips any not installed.
PRELOAD = [
    "pytest",
    "prefect",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.server.api.server",
    "prefect.utilities.visualization",  # the flow engine's, at the first flow run
    "prefect_dask",  # the API server loads Prefect's installed collections when it starts
    "uvicorn.lifespan.on",  # the API server, when the backend starts
    "uvicorn.loops.asyncio",
    "uvicorn.protocols.http.h11_impl",
    "prefect.server.database.query_components",
    "prefect.server.events.services.actions",
    "aiosqlite",
    "anyio._backends._asyncio",  # each flow run's event loop
    "coverage",  # the plugin measures each task's lines at the end of a session
    "hypothesis",  # hypothesis's pytest plugin imports it at every session's terminal summary
    "tests._forkserver",
]


class ForkServer:
    """Starts the fork server lazily, with the environment the session began with."""

    def __init__(self, environ: Mapping[str, str], cwd: Path) -> None:
        self._environ = dict(environ)
        self._cwd = cwd  # where the session started: relative entries of sys.path mean this
        self._context: Any = None

    def _start(self) -> Any:
        if self._context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            with _environ(self._environ), _cwd(self._cwd):
                from multiprocessing import forkserver

                forkserver.ensure_running()
            self._context = context
        return self._context

    def run_pytest(
        self, args: list[str], cwd: Path, env: Mapping[str, str], out: Path, err: Path, timeout: float | None
    ) -> int:
        process = self._start().Process(
            target=_child, args=(args, str(cwd), dict(env), str(out), str(err)), name="pytester-session"
        )
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise TimeoutError(f"pytest {' '.join(args)} did not finish within {timeout} s")
        return int(process.exitcode or 0)


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = os.environ.copy()
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:  # contextlib.chdir is Python 3.11+
    saved = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(saved)


def _child(args: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """In the forked process: become `python -m pytest ARGS` run in `cwd` with `env`."""
    # What the fork server imported lives as long as the session: the garbage collector skips it,
    # instead of walking Prefect's whole heap at each full collection (pytest runs two at the end).
    gc.freeze()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.path[:0] = [cwd, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    _refresh_prefect_settings()
    with open(out, "w", encoding="utf8") as stdout, open(err, "w", encoding="utf8") as stderr:
        os.dup2(stdout.fileno(), 1)
        os.dup2(stderr.fileno(), 2)
    sys.stdout = open(1, "w", encoding="utf8", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf8", closefd=False, buffering=1)  # noqa: SIM115
    import pytest

    code = pytest.main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(int(code))


def _refresh_prefect_settings() -> None:
    """Prefect read its settings when the fork server imported it: read them from `env` instead."""
    import prefect.context

    prefect.context.GLOBAL_SETTINGS_CONTEXT = prefect.context.root_settings_context()
