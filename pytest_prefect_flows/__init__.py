"""pytest-prefect-flows: fast, isolated, precise testing of Prefect 3 flows.

Names are loaded on first use, so that loading the pytest plugin imports no Prefect.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_prefect_flows.artifacts import ArtifactRecord
    from pytest_prefect_flows.assertions import (
        assert_artifact,
        assert_cancelled,
        assert_completed,
        assert_crashed,
        assert_failed,
        assert_flow_retried,
        assert_logged,
        assert_no_hook_errors,
        assert_retry_delays,
        assert_state,
        assert_task_cached,
        assert_task_completed,
        assert_task_failed,
        assert_task_not_run,
        assert_task_order,
        assert_task_retried,
        assert_task_states,
    )
    from pytest_prefect_flows.automations import (
        DeploymentAutomation,
        Firing,
        automation_fires,
        deployment_triggers,
    )
    from pytest_prefect_flows.backend import IsolatedBackend, RemoteBackend
    from pytest_prefect_flows.blocks import FakeBlocks, Message, NotificationSink, RecordingNotification
    from pytest_prefect_flows.clock import PrefectClock, next_runs
    from pytest_prefect_flows.coverage.discovery import Discovery, discover
    from pytest_prefect_flows.coverage.import_check import check_imports
    from pytest_prefect_flows.deployments.checks import CheckResult, assert_deployable
    from pytest_prefect_flows.deployments.running import DeploymentCall, DeploymentPatch, RunDeployment
    from pytest_prefect_flows.events import (
        EventLog,
        EventRecorder,
        assert_event_emitted,
        assert_no_event,
        record_events,
    )
    from pytest_prefect_flows.exceptions import (
        AbandonedThreadWarning,
        AmbiguousTaskError,
        BackendError,
        DeploymentCheckError,
        FaultSweepError,
        FlowRunTimeoutError,
        HookError,
        HookErrorWarning,
        IdempotencyError,
        InjectedCrash,
        InjectedFault,
        MissingExtraError,
        NetworkBlockedError,
        NetworkWarning,
        PrefectFlowsError,
        PrefectFlowsWarning,
        StrayRunWarning,
        UnknownBlockError,
        UnknownDeploymentError,
        UnknownTaskError,
        UnmockedRequestError,
        UnusedFaultError,
        UnusedFaultWarning,
        UnusedRouteError,
        UnusedStubError,
        UsageError,
    )
    from pytest_prefect_flows.faults import FaultInjector, FaultSpec, fast_retries
    from pytest_prefect_flows.http import PrefectHTTPRouter, mock_http
    from pytest_prefect_flows.idempotency import assert_idempotent, assert_retry_safe, check_idempotent
    from pytest_prefect_flows.recording import FlowRunRecord, RunLog, TaskRunRecord, record_runs
    from pytest_prefect_flows.runner import LogView, RunFlow
    from pytest_prefect_flows.snapshots.extension import PrefectRunSnapshot
    from pytest_prefect_flows.snapshots.structure import FlowStructure, TaskStructure, flow_structure
    from pytest_prefect_flows.snapshots.tree import render_run, run_tree
    from pytest_prefect_flows.strategies import FailurePlan, PlannedFault, failure_plans, records
    from pytest_prefect_flows.sweep import Fault, FaultPoint, FaultSweep, SweepPoint, SweepReport

_EXPORTS: dict[str, str] = {
    "assert_idempotent": "idempotency",
    "assert_retry_safe": "idempotency",
    "check_idempotent": "idempotency",
    "FailurePlan": "strategies",
    "PlannedFault": "strategies",
    "failure_plans": "strategies",
    "records": "strategies",
    "ArtifactRecord": "artifacts",
    "assert_artifact": "assertions",
    "assert_cancelled": "assertions",
    "assert_completed": "assertions",
    "assert_crashed": "assertions",
    "assert_failed": "assertions",
    "assert_flow_retried": "assertions",
    "assert_logged": "assertions",
    "assert_no_hook_errors": "assertions",
    "assert_retry_delays": "assertions",
    "assert_state": "assertions",
    "assert_task_cached": "assertions",
    "assert_task_completed": "assertions",
    "assert_task_failed": "assertions",
    "assert_task_not_run": "assertions",
    "assert_task_order": "assertions",
    "assert_task_retried": "assertions",
    "assert_task_states": "assertions",
    "Discovery": "coverage.discovery",
    "discover": "coverage.discovery",
    "check_imports": "coverage.import_check",
    "CheckResult": "deployments.checks",
    "assert_deployable": "deployments.checks",
    "DeploymentCall": "deployments.running",
    "DeploymentPatch": "deployments.running",
    "RunDeployment": "deployments.running",
    "DeploymentCheckError": "exceptions",
    "UnusedStubError": "exceptions",
    "UnknownDeploymentError": "exceptions",
    "DeploymentAutomation": "automations",
    "Firing": "automations",
    "automation_fires": "automations",
    "deployment_triggers": "automations",
    "EventLog": "events",
    "EventRecorder": "events",
    "assert_event_emitted": "events",
    "assert_no_event": "events",
    "record_events": "events",
    "FakeBlocks": "blocks",
    "Message": "blocks",
    "NotificationSink": "blocks",
    "RecordingNotification": "blocks",
    "AbandonedThreadWarning": "exceptions",
    "AmbiguousTaskError": "exceptions",
    "BackendError": "exceptions",
    "FlowRunTimeoutError": "exceptions",
    "HookError": "exceptions",
    "HookErrorWarning": "exceptions",
    "NetworkBlockedError": "exceptions",
    "NetworkWarning": "exceptions",
    "IdempotencyError": "exceptions",
    "InjectedCrash": "exceptions",
    "InjectedFault": "exceptions",
    "PrefectFlowsError": "exceptions",
    "PrefectFlowsWarning": "exceptions",
    "StrayRunWarning": "exceptions",
    "UnknownBlockError": "exceptions",
    "UnknownTaskError": "exceptions",
    "UnmockedRequestError": "exceptions",
    "UnusedFaultError": "exceptions",
    "UnusedFaultWarning": "exceptions",
    "UnusedRouteError": "exceptions",
    "UsageError": "exceptions",
    "PrefectClock": "clock",
    "next_runs": "clock",
    "FaultInjector": "faults",
    "FaultSpec": "faults",
    "fast_retries": "faults",
    "IsolatedBackend": "backend",
    "RemoteBackend": "backend",
    "PrefectHTTPRouter": "http",
    "mock_http": "http",
    "FlowRunRecord": "recording",
    "RunLog": "recording",
    "TaskRunRecord": "recording",
    "record_runs": "recording",
    "MissingExtraError": "exceptions",
    "PrefectRunSnapshot": "snapshots.extension",
    "FlowStructure": "snapshots.structure",
    "TaskStructure": "snapshots.structure",
    "flow_structure": "snapshots.structure",
    "render_run": "snapshots.tree",
    "run_tree": "snapshots.tree",
    "LogView": "runner",
    "RunFlow": "runner",
    "Fault": "sweep",
    "FaultPoint": "sweep",
    "FaultSweep": "sweep",
    "FaultSweepError": "exceptions",
    "SweepPoint": "sweep",
    "SweepReport": "sweep",
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
