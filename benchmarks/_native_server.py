"""pytest plugin for the "native" column of `benchmarks/suite.py`: Prefect's own harness serves the session.

    python -m pytest example_flows/tests -p benchmarks._native_server

For the whole session it enters Prefect's own `prefect_test_harness()` (a new SQLite database
migrated by a `prefect server` subprocess with its services, as Prefect's testing docs set up) and
points pytest-prefect-flows at that server with `prefect_backend = server:<its URL>`: the tests,
their fixtures and assertions are the same, only the backend is Prefect's.

pytest-prefect-flows replaces `prefect_test_harness` once its own hooks run (see
`pytest_prefect_flows.native_harness`), so this module keeps Prefect's function from the moment
`-p` imports it, which is before any of the plugin's hooks.
"""

from __future__ import annotations

import contextlib

import pytest
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness as _prefects_own_harness

if _prefects_own_harness.__module__ != "prefect.testing.utilities":
    raise ImportError(
        "benchmarks._native_server was imported after pytest-prefect-flows replaced "
        f"prefect_test_harness (got {_prefects_own_harness!r}); pass it with `-p benchmarks._native_server`."
    )

_session = contextlib.ExitStack()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before pytest-prefect-flows makes its backend: start Prefect's server and point the plugin at it."""
    _session.enter_context(_prefects_own_harness())
    config.option.prefect_backend = f"server:{PREFECT_API_URL.value()}"


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _session.close()  # stops the server subprocess, after the plugin closed its backend


def pytest_report_header(config: pytest.Config) -> str:
    return f"benchmarks._native_server: Prefect's prefect_test_harness() serves {PREFECT_API_URL.value()}"
