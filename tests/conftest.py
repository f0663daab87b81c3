"""Shared helpers for the plugin's own tests (pytester is enabled in pyproject's addopts)."""

import os
import time
from collections.abc import Callable

import pytest

from pytest_prefect_flows.harness import default_template_dir

# pytester points HOME at a temporary directory, so every inline session would migrate a template
# database of its own (~6 s each) in a new per-user cache: share the real user's cache instead.
# test_harness.py's template test uses an empty cache of its own.
os.environ.setdefault("PYTEST_PREFECT_FLOWS_CACHE", str(default_template_dir()))


def record_long_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """`time.sleep` of half a second or more is recorded (rounded to 0.1 s) instead of slept.

    Shows whether Prefect's engine waited out a retry delay without the test waiting, and without
    timing anything; shorter sleeps (polling loops) stay real.
    """
    real_sleep: Callable[[float], None] = time.sleep
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        if seconds < 0.5:
            real_sleep(seconds)
        else:
            slept.append(round(seconds, 1))
            real_sleep(0.05)  # a polling caller (a flow retry waiting for the server) does not spin

    monkeypatch.setattr(time, "sleep", sleep)
    return slept


@pytest.fixture
def long_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_long_sleeps(monkeypatch)
