"""CI gates: the checks of the import check (`--prefect-check-imports`) and the coverage gates.

`check_loaded` needs Prefect (it builds schemas and deployments); the gates only read plain data.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from pytest_prefect_flows.coverage.collector import Usage
from pytest_prefect_flows.coverage.discovery import Definition, Discovery, ModuleInfo, tasks_used_by


@dataclass
class Problem:
    """One thing `--prefect-check-imports` found wrong, located by module path."""

    check: str  # "import" | "parameters" | "deployment" | "task-names"
    module: str
    path: str
    message: str
    object: str | None = None

    def __str__(self) -> str:
        where = f"{self.path} ({self.object})" if self.object else self.path
        return f"{where}: {self.check}: {self.message}"


@dataclass
class GateResult:
    """Outcome of one gate; `missing` names the flow/task keys that made it fail."""

    name: str
    option: str
    passed: bool
    message: str
    missing: list[str] = field(default_factory=list)


def check_loaded(discovery: Discovery) -> list[Problem]:
    """Import errors, then per imported flow: parameter schema, deployment object, unique task names.

    `discovery` holds imported objects (`import_check.import_modules`); `import_check.check_imports`
    runs this in a subprocess on what `discover` found.
    """
    problems = [
        Problem("import", module.name, module.path, module.error or "") for module in discovery.import_errors
    ]
    for flow in discovery.flows:
        problems += _check_flow(flow)
    return problems


def _check_flow(flow: Definition) -> list[Problem]:
    from prefect.utilities.callables import parameter_schema

    from pytest_prefect_flows._compat import flow_to_deployment

    def problem(check: str, message: str) -> Problem:
        return Problem(check, flow.module, flow.location, message, object=f"flow {flow.name!r}")

    try:
        parameter_schema(flow.obj.fn)
    except Exception as exc:
        return [problem("parameters", f"cannot build the parameter schema: {type(exc).__name__}: {exc}")]
    problems = []
    try:
        flow_to_deployment(flow.obj, f"{flow.name}-import-check")
    except Exception as exc:
        problems.append(problem("deployment", f"cannot become a deployment: {type(exc).__name__}: {exc}"))
    for name, keys in _duplicate_task_names(flow.obj).items():
        problems.append(
            problem(
                "task-names",
                f"uses {len(keys)} different tasks named {name!r} ({', '.join(keys)}); "
                "give them distinct names (`@task(name=...)`) so runs and reports can tell them apart",
            )
        )
    return problems


def _duplicate_task_names(flow: Any) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for task in tasks_used_by(flow):
        key = f"{task.fn.__module__}:{task.fn.__qualname__}"
        keys = by_name.setdefault(task.name, [])
        if key not in keys:
            keys.append(key)
    return {name: keys for name, keys in by_name.items() if len(keys) > 1}


def run_gates(
    discovery: Discovery | None,
    usage: dict[str, Usage],
    *,
    fail_under: float | None,
    require_retries: bool,
    direct: Collection[str] = (),
) -> list[GateResult]:
    """The gates asked for, on what a session (or the merged shards of one) ran.

    `cov_fail_under` needs discovered tasks; `require_retry_tested` checks the discovered tasks, or
    without flow paths (flows of `prefect.yaml`) every task that ran.
    """
    results = []
    if fail_under and discovery is not None:
        results.append(cov_fail_under(discovery.tasks, usage, fail_under, direct))
    if require_retries:
        tasks: list[Definition | Usage] = [u for u in usage.values() if u.kind == "task"]
        if discovery is not None and discovery.source == "flow_paths":
            tasks = list(discovery.tasks)
        results.append(require_retry_tested(tasks, usage))
    unreadable = discovery.import_errors if discovery is not None else []
    return [fail_for_unreadable(result, unreadable) for result in results]


def cov_fail_under(
    tasks: Iterable[Definition],
    usage: dict[str, Usage],
    threshold: float,
    direct: Collection[str] = (),
) -> GateResult:
    """Percent of discovered tasks that ran (or, when in `direct`, ran directly) must reach `threshold`."""
    tasks = list(tasks)
    missing = [task for task in tasks if task.key not in usage and task.key not in direct]
    ran = len(tasks) - len(missing)
    percent = 100.0 * ran / len(tasks) if tasks else 100.0
    passed = percent >= threshold
    message = f"{ran} of {len(tasks)} discovered tasks ran ({percent:.1f}%, required {threshold:g}%)"
    if missing:
        message += "; never run: " + ", ".join(f"{task.name} ({task.location})" for task in missing)
    return GateResult(
        "cov_fail_under",
        f"--prefect-cov-fail-under={threshold:g}",
        passed,
        message,
        [task.key for task in missing],
    )


def require_retry_tested(candidates: Iterable[Definition | Usage], usage: dict[str, Usage]) -> GateResult:
    """Every task configured with retries > 0 must have been seen retrying in some test."""
    with_retries = [task for task in candidates if task.retries > 0]
    missing = [task for task in with_retries if not (task.key in usage and usage[task.key].retried)]
    tested = len(with_retries) - len(missing)
    message = f"{tested} of {len(with_retries)} tasks with retries were seen retrying"
    if missing:
        message += "; never retried: " + ", ".join(
            f"{task.name} (retries={task.retries}, {_describe_usage(usage.get(task.key))})"
            for task in missing
        )
        message += ". Make one attempt fail in a test, e.g. `fail_task(name, times=1)`"
    return GateResult(
        "require_retry_tested",
        "--prefect-require-retry-tested",
        not missing,
        message,
        [task.key for task in missing],
    )


def _describe_usage(usage: Usage | None) -> str:
    return "never run" if usage is None else f"ran {usage.runs}x without retrying"


def fail_for_unreadable(result: GateResult, unreadable: list[ModuleInfo]) -> GateResult:
    """A gate cannot pass while a file under the flow paths could not be read: its flows and tasks
    are unknown."""
    if unreadable:
        files = "; ".join(f"{module.path} ({module.error})" for module in unreadable)
        result.passed = False
        result.message += f"; cannot read {files}: fix the file, or leave it out of prefect_flow_paths"
    return result
