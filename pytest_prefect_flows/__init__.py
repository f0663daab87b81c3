"""pytest-prefect-flows: fast, isolated, precise testing of Prefect 3 flows.

Names are loaded on first use, so that loading the pytest plugin imports no Prefect.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `name as name`: re-exported for type checkers (mypy --strict)
    from pytest_prefect_flows.artifacts import (
        ArtifactRecord as ArtifactRecord,
    )
    from pytest_prefect_flows.assertions import (
        assert_artifact as assert_artifact,
        assert_cancelled as assert_cancelled,
        assert_completed as assert_completed,
        assert_crashed as assert_crashed,
        assert_failed as assert_failed,
        assert_flow_retried as assert_flow_retried,
        assert_logged as assert_logged,
        assert_no_hook_errors as assert_no_hook_errors,
        assert_retry_delays as assert_retry_delays,
        assert_state as assert_state,
        assert_task_cached as assert_task_cached,
        assert_task_completed as assert_task_completed,
        assert_task_failed as assert_task_failed,
        assert_task_not_run as assert_task_not_run,
        assert_task_order as assert_task_order,
        assert_task_retried as assert_task_retried,
        assert_task_states as assert_task_states,
    )
    from pytest_prefect_flows.automations import (
        DeploymentAutomation as DeploymentAutomation,
        Firing as Firing,
        automation_fires as automation_fires,
        deployment_triggers as deployment_triggers,
    )
    from pytest_prefect_flows.backend import (
        IsolatedBackend as IsolatedBackend,
        RemoteBackend as RemoteBackend,
    )
    from pytest_prefect_flows.blocks import (
        FakeBlocks as FakeBlocks,
        Message as Message,
        NotificationSink as NotificationSink,
        RecordingNotification as RecordingNotification,
    )
    from pytest_prefect_flows.clock import (
        PrefectClock as PrefectClock,
        next_runs as next_runs,
    )
    from pytest_prefect_flows.coverage.discovery import (
        Discovery as Discovery,
        discover as discover,
    )
    from pytest_prefect_flows.coverage.import_check import (
        check_imports as check_imports,
    )
    from pytest_prefect_flows.deployments.checks import (
        CheckResult as CheckResult,
        assert_deployable as assert_deployable,
    )
    from pytest_prefect_flows.deployments.running import (
        DeploymentCall as DeploymentCall,
        DeploymentPatch as DeploymentPatch,
        RunDeployment as RunDeployment,
    )
    from pytest_prefect_flows.events import (
        EventLog as EventLog,
        EventRecorder as EventRecorder,
        assert_event_emitted as assert_event_emitted,
        assert_no_event as assert_no_event,
        record_events as record_events,
    )
    from pytest_prefect_flows.exceptions import (
        AbandonedThreadWarning as AbandonedThreadWarning,
        AmbiguousTaskError as AmbiguousTaskError,
        BackendError as BackendError,
        DeploymentCheckError as DeploymentCheckError,
        FaultSweepError as FaultSweepError,
        FlowRunTimeoutError as FlowRunTimeoutError,
        HookError as HookError,
        HookErrorWarning as HookErrorWarning,
        IdempotencyError as IdempotencyError,
        InjectedCrash as InjectedCrash,
        InjectedFault as InjectedFault,
        MissingExtraError as MissingExtraError,
        NetworkBlockedError as NetworkBlockedError,
        NetworkWarning as NetworkWarning,
        PrefectFlowsDeprecationWarning as PrefectFlowsDeprecationWarning,
        PrefectFlowsError as PrefectFlowsError,
        PrefectFlowsWarning as PrefectFlowsWarning,
        StrayRunWarning as StrayRunWarning,
        UnknownBlockError as UnknownBlockError,
        UnknownDeploymentError as UnknownDeploymentError,
        UnknownTaskError as UnknownTaskError,
        UnmockedRequestError as UnmockedRequestError,
        UnusedFaultError as UnusedFaultError,
        UnusedFaultWarning as UnusedFaultWarning,
        UnusedRouteError as UnusedRouteError,
        UnusedStubError as UnusedStubError,
        UsageError as UsageError,
    )
    from pytest_prefect_flows.faults import (
        FaultInjector as FaultInjector,
        FaultSpec as FaultSpec,
        fast_retries as fast_retries,
    )
    from pytest_prefect_flows.http import (
        PrefectHTTPRouter as PrefectHTTPRouter,
        mock_http as mock_http,
    )
    from pytest_prefect_flows.idempotency import (
        assert_idempotent as assert_idempotent,
        assert_retry_safe as assert_retry_safe,
        check_idempotent as check_idempotent,
    )
    from pytest_prefect_flows.recording import (
        FlowRunRecord as FlowRunRecord,
        RunLog as RunLog,
        TaskRunRecord as TaskRunRecord,
        record_runs as record_runs,
    )
    from pytest_prefect_flows.runner import (
        LogView as LogView,
        RunFlow as RunFlow,
    )
    from pytest_prefect_flows.snapshots import (
        PrefectSnapshot as PrefectSnapshot,
    )
    from pytest_prefect_flows.snapshots.extension import (
        PrefectRunSnapshot as PrefectRunSnapshot,
    )
    from pytest_prefect_flows.snapshots.structure import (
        FlowStructure as FlowStructure,
        TaskStructure as TaskStructure,
        flow_structure as flow_structure,
    )
    from pytest_prefect_flows.snapshots.tree import (
        render_run as render_run,
        run_tree as run_tree,
    )
    from pytest_prefect_flows.strategies import (
        FailurePlan as FailurePlan,
        PlannedFault as PlannedFault,
        failure_plans as failure_plans,
        records as records,
    )
    from pytest_prefect_flows.sweep import (
        Fault as Fault,
        FaultPoint as FaultPoint,
        FaultSweep as FaultSweep,
        SweepPoint as SweepPoint,
        SweepReport as SweepReport,
    )

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
    "PrefectFlowsDeprecationWarning": "exceptions",
    "PrefectSnapshot": "snapshots",
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
