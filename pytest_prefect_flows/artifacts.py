"""Artifacts a flow run created (`create_markdown_artifact`, `create_table_artifact`, ...), recorded
on the client side like the runs themselves.

Every way Prefect creates or updates an artifact ends in the client's `create_artifact` /
`update_artifact` (sync and async clients); while any `RunLog` listens, those are wrapped and what
the API answered is added to the record of the flow run that created it, with the task run that
created it, if any. `FlowRunRecord.artifacts` holds them in creation order; a progress artifact
updated later holds its last value. Checked with `assert_artifact(run, key=..., type=...,
contains=...)` (in `assertions`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_prefect_flows.recording import RunLog, TaskRunRecord

__all__ = ["ArtifactRecord"]


@dataclass(eq=False)
class ArtifactRecord:
    """One artifact a flow run (or one of its task runs) created: as stored by the API."""

    id: str
    key: str | None
    type: str | None
    data: Any
    description: str | None
    flow_run_id: str | None
    task_run: TaskRunRecord | None = None

    @property
    def text(self) -> str:
        """`data` as text: a string as it is, anything else as JSON."""
        if isinstance(self.data, str):
            return self.data
        return json.dumps(self.data, default=str, sort_keys=True)

    def to_data(self) -> dict[str, str | None]:
        """What the JSON and HTML reports keep: key, type, description, the task run's name."""
        return {
            "key": self.key,
            "type": self.type,
            "description": self.description,
            "task_run": self.task_run.name if self.task_run is not None else None,
        }

    def __repr__(self) -> str:
        where = f" task_run={self.task_run.name!r}" if self.task_run is not None else ""
        return f"<ArtifactRecord key={self.key!r} type={self.type!r}{where}>"


def record_artifact(run_log: RunLog, created: Any) -> None:
    """Add an artifact the API created to the record of its flow run (if that run is recorded)."""
    flow_run = run_log.find_flow_run(created.flow_run_id)
    if flow_run is None:
        return
    artifact = ArtifactRecord(
        id=str(created.id),
        key=created.key,
        type=created.type,
        data=created.data,
        description=created.description,
        flow_run_id=flow_run.id,
        task_run=run_log.find_task_run(created.task_run_id),
    )
    flow_run.artifacts.append(artifact)


def record_update(run_log: RunLog, artifact_id: Any, update: Any) -> None:
    """Apply an update (a progress artifact's new value, ...) to the recorded artifact."""
    for flow_run in run_log.flow_runs:
        for artifact in flow_run.artifacts:
            if artifact.id == str(artifact_id):
                fields = update.model_dump(exclude_unset=True)
                if "data" in fields:
                    artifact.data = update.data
                if "description" in fields:
                    artifact.description = update.description


Patch = Callable[[Any, str, Callable[[Any], Any]], None]


def patch_clients(patch: Patch, listeners: Callable[[], list[RunLog]]) -> None:
    """Wrap `create_artifact` and `update_artifact` of Prefect's sync and async clients, where they
    are defined, so every artifact reaches the listening run logs."""
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient

    def on_create(args: tuple[Any, ...], kwargs: dict[str, Any], response: Any) -> None:
        for run_log in listeners():
            record_artifact(run_log, response)

    def on_update(args: tuple[Any, ...], kwargs: dict[str, Any], response: Any) -> None:
        artifact_id, update = (*args, *kwargs.values())[:2]
        for run_log in listeners():
            record_update(run_log, artifact_id, update)

    for name, notify in (("create_artifact", on_create), ("update_artifact", on_update)):
        patch(_owner(SyncPrefectClient, name), name, _notifying(notify, asynchronous=False))
        patch(_owner(PrefectClient, name), name, _notifying(notify, asynchronous=True))


def _owner(client: type, name: str) -> type:
    return next(cls for cls in client.__mro__ if name in vars(cls))


Notify = Callable[[tuple[Any, ...], dict[str, Any], Any], None]


def _notifying(notify: Notify, *, asynchronous: bool) -> Callable[[Any], Any]:
    """Wraps a client method so that `notify(args, kwargs, result)` follows each call that returned."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        if asynchronous:

            async def amethod(client: Any, *args: Any, **kwargs: Any) -> Any:
                result = await original(client, *args, **kwargs)
                notify(args, kwargs, result)
                return result

            return amethod

        def method(client: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(client, *args, **kwargs)
            notify(args, kwargs, result)
            return result

        return method

    return wrap
