"""pytest-prefect-flows: fast, isolated, precise testing of Prefect 3 flows.

Names are loaded on first use, so that loading the pytest plugin imports no Prefect.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_prefect_flows.exceptions import (
        BackendError,
        FlowRunTimeoutError,
        PrefectFlowsError,
        PrefectFlowsWarning,
        UnknownBlockError,
        UnknownTaskError,
        UnusedFaultWarning,
        UsageError,
    )
    from pytest_prefect_flows.harness import IsolatedBackend, RemoteBackend
    from pytest_prefect_flows.recording import FlowRunRecord, RunLog, TaskRunRecord, record_runs
    from pytest_prefect_flows.runner import LogView, RunFlow

_EXPORTS: dict[str, str] = {
    "BackendError": "exceptions",
    "FlowRunTimeoutError": "exceptions",
    "PrefectFlowsError": "exceptions",
    "PrefectFlowsWarning": "exceptions",
    "UnknownBlockError": "exceptions",
    "UnknownTaskError": "exceptions",
    "UnusedFaultWarning": "exceptions",
    "UsageError": "exceptions",
    "IsolatedBackend": "harness",
    "RemoteBackend": "harness",
    "FlowRunRecord": "recording",
    "RunLog": "recording",
    "TaskRunRecord": "recording",
    "record_runs": "recording",
    "LogView": "runner",
    "RunFlow": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_prefect_flows' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pytest_prefect_flows.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
