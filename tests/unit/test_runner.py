"""The per-test scope of `runner.py`, with stand-in backends."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from pytest_prefect_flows.runner import _cleaned_up_quietly


class _BackendWarningOnCleanup:
    """Deleting what the test saved makes SQLAlchemy warn, as the server's SQLite queries do."""

    @contextlib.contextmanager
    def isolated_test(self, *, empty: bool = False) -> Iterator[None]:
        yield
        warnings.warn("Type object 'JSON' does not refer to an OperatorClass", UserWarning, stacklevel=1)


def test_cleanup_after_the_test_runs_under_the_server_warning_filter() -> None:
    backend: Any = _BackendWarningOnCleanup()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _cleaned_up_quietly(backend):
            pass
    assert [str(warning.message) for warning in caught] == []
