"""`PrefectRunSnapshot`: the syrupy extension that stores a flow run as its text tree.

    assert run == snapshot(extension_class=PrefectRunSnapshot)
    assert run == snapshot(extension_class=PrefectRunSnapshot, include=("parameters", "results"))

Snapshots go to syrupy's usual `__snapshots__/<test file>.ambr`; `--snapshot-update` writes and
prunes them, and a mismatch shows syrupy's line diff of the two trees. Data that is not a run (or a
`flow_structure`) is stored as syrupy's default extension stores it. Importing this module needs
syrupy (`pip install 'pytest-prefect-flows[snapshot]'`).
"""

from __future__ import annotations

from typing import Any

from syrupy.extensions.amber import AmberSnapshotExtension

from pytest_prefect_flows.snapshots.structure import FlowStructure
from pytest_prefect_flows.snapshots.tree import check_include, render_run


class PrefectRunSnapshot(AmberSnapshotExtension):
    """Stores a `FlowRunRecord` (or every top-level run of a `RunLog`) as a readable run tree.

    `include=("parameters", "results")` adds each run's parameters and result; `matcher=` (syrupy's
    `path_type`, `path_value` or any `matcher(data=, path=)`) rewrites those values and retry delays
    before they are written, e.g. to replace floats or temporary paths. A property filter (syrupy's
    `props(...)`, `paths(...)`) passed as `include=`/`exclude=` applies to data that is not a run.
    """

    def serialize(self, data: Any, **kwargs: Any) -> str:
        text = as_text(data, include=kwargs.get("include"), matcher=kwargs.get("matcher"))
        if text is None:
            return str(super().serialize(data, **kwargs))
        return str(super().serialize(text))


def as_text(data: Any, include: Any = None, matcher: Any = None) -> str | None:
    """The snapshot text of a run, a run log or a flow structure; None for anything else."""
    from pytest_prefect_flows.recording import FlowRunRecord, RunLog

    if isinstance(data, FlowStructure):
        return str(data)
    if isinstance(data, FlowRunRecord):
        return render_run(data, check_include(include), matcher)
    if isinstance(data, RunLog):
        sections = check_include(include)
        return "\n".join(render_run(run, sections, matcher) for run in data.top_level) or "(no flow runs)"
    return None
