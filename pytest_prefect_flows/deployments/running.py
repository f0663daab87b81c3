"""Run deployments in the test process the way a worker would, and stand in for `run_deployment`.

`DeploymentRunner.run("flow-name/deployment-name", parameters)` registers the `prefect.yaml`
deployment on the test backend (`flow.to_deployment(...).apply()`), creates a flow run from it (the
API merges the deployment's default parameters with the given ones, as for a scheduled run), and
runs that flow run with Prefect's engine (`prefect.flow_engine.run_flow`), as a worker's process does.

`DeploymentPatch` replaces `prefect.deployments.run_deployment` for its duration: Prefect's own
function still creates the flow run (linked to the calling flow as a subflow, with its tags and
idempotency key), then the run executes here instead of waiting for a worker. Stubs return a flow
run in a chosen state without running anything. Works without pytest::

    with record_runs() as runs, DeploymentPatch(DeploymentRunner(Catalog(Path("."))), runs) as patch:
        orchestrator()
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows import _compat
from pytest_prefect_flows.exceptions import UnknownDeploymentError, UnusedStubError, UsageError
from pytest_prefect_flows.prefect_yaml import DeploymentSpec, find_projects

if TYPE_CHECKING:
    from pytest_prefect_flows.recording import FlowRunRecord, RunLog

_STATE_NAMES = ("Completed", "Failed", "Crashed", "Cancelled")


class Catalog:
    """The `prefect.yaml` deployments under `root`, looked up by `flow-name/deployment-name`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: list[DeploymentSpec] | None = None

    @property
    def specs(self) -> list[DeploymentSpec]:
        if self._specs is None:
            self._specs = [spec for project in find_projects(self.root) for spec in project.deployments]
        return self._specs

    def find(self, name: Any) -> tuple[DeploymentSpec, Any]:
        """The deployment called `name` and its flow; an error listing the names that exist."""
        from pytest_prefect_flows.deployments.entrypoints import EntrypointError, load_flow

        flow_name, deployment_name = split_name(name)
        for spec in self.specs:
            if spec.name != deployment_name:
                continue
            try:
                flow = load_flow(spec.entrypoint, spec.file.parent)
            except EntrypointError as exc:
                raise UsageError(f"{spec.label}: entrypoint {exc}") from None
            if flow.name == flow_name:
                return spec, flow
        raise UnknownDeploymentError(
            f"No prefect.yaml deployment {name!r} under {self.root}. Deployments found: "
            f"{', '.join(self.names()) or 'none'}. Names are `flow-name/deployment-name`, the flow's "
            "name as @flow(name=...) gives it."
        )

    def names(self) -> list[str]:
        from pytest_prefect_flows.deployments.entrypoints import EntrypointError, load_flow

        names = []
        for spec in self.specs:
            try:
                names.append(f"{load_flow(spec.entrypoint, spec.file.parent).name}/{spec.name}")
            except EntrypointError:
                names.append(f"?/{spec.name} (entrypoint does not load)")
        return names


def split_name(name: Any) -> tuple[str, str]:
    flow_name, sep, deployment_name = name.partition("/") if isinstance(name, str) else ("", "", "")
    if not (sep and flow_name and deployment_name):
        raise UsageError(
            f"Expected a deployment name `flow-name/deployment-name` (e.g. 'etl-pipeline/nightly-etl'), "
            f"got {name!r}."
        )
    return flow_name, deployment_name


class DeploymentRunner:
    """Registers deployments on the test backend and runs their flow runs in this process."""

    def __init__(self, catalog: Catalog, run_log: RunLog) -> None:
        self.catalog = catalog
        self.run_log = run_log
        self._registered: dict[str, tuple[DeploymentSpec, Any]] = {}

    def register(self, name: str, parameters: dict[str, Any] | None = None) -> Any:
        """Apply the deployment to the backend (once per test) and return its flow.

        A default that is a `{{ template }}` (filled in by `prefect deploy`) must be in `parameters`.
        """
        if name not in self._registered:
            spec, flow = self.catalog.find(name)
            deployment = _compat.call_sync(
                flow.to_deployment,
                name=spec.name,
                parameters=_concrete(spec.raw.get("parameters") or {}),
                tags=spec.raw.get("tags") if isinstance(spec.raw.get("tags"), list) else None,
                description=spec.raw.get("description"),
            )
            _compat.call_sync(deployment.apply)
            self._registered[name] = (spec, flow)
        spec, flow = self._registered[name]
        _require_templated(spec, parameters or {})
        return flow

    def run(self, name: str, parameters: dict[str, Any] | None = None) -> FlowRunRecord:
        """A flow run of the deployment, created by the API and run by Prefect's engine here."""
        flow = self.register(name, parameters)
        with _sync_client() as client:
            deployment = client.read_deployment_by_name(name)
            flow_run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters or {})
        return self.execute(flow, flow_run)

    def execute(self, flow: Any, flow_run: Any) -> FlowRunRecord:
        """Run an existing flow run of `flow` with Prefect's engine, as a worker's process does."""
        from prefect.flow_engine import run_flow

        from pytest_prefect_flows.runner import is_for_the_test, raise_outcome

        try:
            state: Any = run_flow(flow, flow_run=flow_run, return_type="state")
            if inspect.iscoroutine(state):
                from prefect.utilities.asyncutils import run_coro_as_sync

                state = run_coro_as_sync(state)
        except BaseException as exc:  # a crashed run: its record holds the Crashed state
            if is_for_the_test(exc):
                self.run_log.take_outcome()
                raise
            if str(flow_run.id) not in {run.id for run in self.run_log.flow_runs}:
                raise
            record = self.run_log.get(flow_run.id)
        else:
            record = self.run_log.get(flow_run.id)
            record.state = state
        raise_outcome(self.run_log, record)
        return record


def _sync_client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _concrete(defaults: dict[str, Any]) -> dict[str, Any]:
    """Default parameters without the `{{ template }}` ones (`prefect deploy` would fill those in)."""
    from prefect.utilities.templating import find_placeholders

    return {key: value for key, value in defaults.items() if not find_placeholders(value)}


def _require_templated(spec: DeploymentSpec, overrides: dict[str, Any]) -> None:
    defaults = spec.raw.get("parameters") or {}
    missing = [key for key in defaults if key not in _concrete(defaults) and key not in overrides]
    if missing:
        raise UsageError(
            f"{spec.label}: parameter(s) {', '.join(missing)} default to a `{{{{ ... }}}}` template that "
            "`prefect deploy` fills in; pass them in parameters={...}."
        )


class RunDeployment:
    """`run_deployment("flow-name/deployment-name", parameters=None) -> FlowRunRecord`."""

    def __init__(self, runner: DeploymentRunner) -> None:
        self._runner = runner

    def __call__(self, name: str, parameters: dict[str, Any] | None = None) -> FlowRunRecord:
        if parameters is not None and not isinstance(parameters, dict):
            raise UsageError(f"run_deployment({name!r}, parameters=...) takes a dict, got {parameters!r}.")
        return self._runner.run(name, parameters)

    def __repr__(self) -> str:
        return f"<RunDeployment root={self._runner.catalog.root}>"


@dataclass
class DeploymentCall:
    """One call of `run_deployment` made by flow code during the test."""

    name: str
    parameters: dict[str, Any]
    timeout: float | None
    as_subflow: bool | None
    stubbed: bool
    flow_run: Any = field(default=None, repr=False)


@dataclass
class _Stub:
    state: str
    result: Any
    message: str | None
    required: bool


class DeploymentPatch:
    """`prefect.deployments.run_deployment` runs deployments here; `.stub(...)`, `.calls`."""

    def __init__(self, runner: DeploymentRunner) -> None:
        self._runner = runner
        self._stubs: dict[str, _Stub] = {}
        self.calls: list[DeploymentCall] = []
        self._restore: list[tuple[Any, str, Any]] = []

    def stub(
        self,
        name: str,
        state: str = "Completed",
        result: Any = None,
        message: str | None = None,
        *,
        required: bool = True,
    ) -> None:
        """Calls of deployment `name` return a flow run in `state` (with `result`) and run nothing.

        A stub that no call used fails the test at teardown (a misspelt name), unless `required=False`.
        """
        split_name(name)
        if state not in _STATE_NAMES:
            raise UsageError(
                f"prefect_deployments.stub({name!r}, state={state!r}): state is one of "
                f"{', '.join(_STATE_NAMES)}."
            )
        self._stubs[name] = _Stub(state, result, message, required)

    def called(self, name: str) -> list[DeploymentCall]:
        return [call for call in self.calls if call.name == name]

    def __enter__(self) -> DeploymentPatch:
        import prefect.deployments.flow_runs as flow_runs

        sync_original = flow_runs.run_deployment
        self._original: Callable[..., Any] = sync_original
        self._swap(sync_original, self._replacement)
        async_original = getattr(flow_runs, "arun_deployment", None)
        if async_original is not None:  # Prefect 3.5+ (3.4 has only the sync_compatible function)
            self._swap(async_original, self._async_replacement)
        return self

    def __exit__(self, exc_type: Any, *exc_info: object) -> None:
        for namespace, attribute, original in reversed(self._restore):
            setattr(namespace, attribute, original)
        self._restore.clear()
        called = {call.name for call in self.calls}
        unused = [name for name, stub in self._stubs.items() if stub.required and name not in called]
        if exc_type is None and unused:
            seen = ", ".join(dict.fromkeys(call.name for call in self.calls)) or "(none)"
            raise UnusedStubError(
                f"Stubbed deployment(s) never called: {', '.join(unused)}.\n"
                f"Deployments called: {seen}\n"
                "Fix the name (`flow-name/deployment-name`) or pass required=False to stub()."
            )

    def _swap(self, original: Any, replacement: Callable[..., Any]) -> None:
        """Replace every module-level reference to `original` (`from prefect.deployments import ...` too)."""
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for attribute, value in list(namespace.items()):
                if value is original:
                    self._restore.append((module, attribute, original))
                    setattr(module, attribute, replacement)

    def _replacement(self, name: Any, *args: Any, **kwargs: Any) -> Any:
        if _loop_running():
            return self._async_replacement(name, *args, **kwargs)
        return self._call(name, *args, **kwargs)

    async def _async_replacement(self, name: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._call, name, *args, **kwargs)

    def _call(self, name: Any, *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(self._original).bind(name, *args, **kwargs).arguments
        call = DeploymentCall(
            name=str(name),
            parameters=dict(bound.get("parameters") or {}),
            timeout=bound.get("timeout"),
            as_subflow=bound.get("as_subflow", True),
            stubbed=str(name) in self._stubs,
        )
        self.calls.append(call)
        if call.stubbed:
            call.flow_run = _stub_flow_run(call, self._stubs[call.name])
            return call.flow_run
        flow = self._runner.register(call.name, call.parameters)
        created = _compat.call_sync(self._original, name, *args, **{**kwargs, "timeout": 0})
        self._runner.execute(flow, created)
        with _sync_client() as client:
            call.flow_run = client.read_flow_run(created.id)
        return call.flow_run

    def __repr__(self) -> str:
        return f"<DeploymentPatch {len(self.calls)} calls, stubs {sorted(self._stubs)}>"


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _stub_flow_run(call: DeploymentCall, stub: _Stub) -> Any:
    import uuid

    from prefect import states
    from prefect.client.schemas.objects import FlowRun

    make = getattr(states, stub.state)
    state = make(data=stub.result) if stub.state == "Completed" else make(message=stub.message)
    _, deployment_name = split_name(call.name)
    return FlowRun(
        id=uuid.uuid4(),
        flow_id=uuid.uuid4(),
        name=f"stub-{deployment_name}",
        parameters=call.parameters,
        state=state,
        state_type=state.type,
        state_name=state.name,
    )
