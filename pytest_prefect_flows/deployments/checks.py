"""The checks `prefect deploy` and the first scheduled run would otherwise find, run in the test suite.

Works without pytest::

    for project in find_projects("."):
        for spec in project.deployments:
            result = check_spec(spec, project)
            print(result.label, result.problems, result.notes())

Each check uses Prefect's own code: its `prefect.yaml` model, `load_flow_from_entrypoint`, the
flow's parameter schema with Prefect's schema validator, the schedule classes `prefect deploy`
builds, its template placeholder parser and its step importer.
"""

from __future__ import annotations

import datetime as dt
import difflib
import importlib.util
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.exceptions import DeploymentCheckError, UsageError

if TYPE_CHECKING:
    from pytest_prefect_flows.prefect_yaml import DeploymentSpec, PrefectProject

STEP_SECTIONS = ("build", "push", "pull")
_SCHEDULE_HINT = (
    "write e.g. `cron: '0 2 * * *'`, `interval: 3600` or `rrule: 'FREQ=DAILY;BYHOUR=2'`, "
    "with an IANA `timezone:` such as Europe/Berlin"
)


@dataclass(frozen=True)
class Problem:
    """One finding: the field it is about and what is wrong, with the fix in words."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class CheckResult:
    """What checking one deployment found: problems, schedule fire times, template references."""

    label: str
    problems: list[Problem] = field(default_factory=list)
    fire_times: dict[str, list[dt.datetime]] = field(default_factory=dict)
    references: list[str] = field(default_factory=list)
    flow: Any = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, field_name: str, message: str) -> None:
        self.problems.append(Problem(field_name, message))

    def notes(self) -> list[str]:
        """What `-v` shows for a deployment: next fire times per schedule, references."""
        lines = [
            f"{where}: next {', '.join(when.isoformat() for when in times)}"
            for where, times in self.fire_times.items()
        ]
        if self.references:
            lines.append("references: " + ", ".join(self.references))
        return lines

    def message(self) -> str:
        fields = ", ".join(dict.fromkeys(problem.field for problem in self.problems))
        lines = [f"{self.label}: deployment check failed ({fields})"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)

    def raise_for_problems(self) -> None:
        if self.problems:
            raise DeploymentCheckError(self.message(), [str(problem) for problem in self.problems])


def parse_known_refs(lines: Iterable[str]) -> frozenset[str]:
    """`prefect_known_refs` lines: `variables.NAME` or `blocks.TYPE.NAME`."""
    refs = set()
    for line in lines:
        ref = line.strip()
        parts = ref.split(".")
        if (parts[0] == "variables" and len(parts) == 2) or (parts[0] == "blocks" and len(parts) == 3):
            refs.add(ref)
            continue
        raise UsageError(
            f"prefect_known_refs: {ref!r} is not a reference; write `variables.NAME` or "
            "`blocks.TYPE.NAME` (e.g. variables.db_config, blocks.secret.db-password)."
        )
    return frozenset(refs)


def check_spec(
    spec: DeploymentSpec,
    project: PrefectProject,
    known_refs: frozenset[str] | None = None,
    duplicate: bool = False,
) -> CheckResult:
    """Every check of one `prefect.yaml` deployment; `known_refs=None` lists references without judging."""
    result = CheckResult(spec.label)
    raw = spec.raw
    if "__invalid__" in raw:
        result.add(f"deployments[{spec.index}]", "is not a mapping; write `- name: ...` with its fields.")
        return result
    _check_fields(raw, result)
    _check_name(raw, spec.index, duplicate, result)
    result.flow = _check_entrypoint(raw.get("entrypoint"), spec.file.parent, result)
    defaults = raw.get("parameters") or {}
    if result.flow is not None:
        _check_parameters(result.flow, defaults, result)
        _check_schedule_parameters(result.flow, defaults, _schedule_entries(raw), result)
    _check_schedules(_schedule_entries(raw), result)
    _check_work_pool(raw.get("work_pool"), result)
    steps = {section: project.steps_for(spec, section) for section in STEP_SECTIONS}
    for where, step_list in steps.items():
        _check_steps(where, step_list, result)
    _check_references({**raw, **{where: s for where, (s, _) in steps.items()}}, known_refs, result)
    return result


def check_deployment_object(deployment: Any, known_refs: Iterable[str] | None = None) -> CheckResult:
    """The same checks for a deployment built in Python (`flow.to_deployment(...)`)."""
    name = getattr(deployment, "name", None)
    if not hasattr(deployment, "schedules") or not hasattr(deployment, "parameters"):
        raise UsageError(
            f"assert_deployable() takes a deployment from flow.to_deployment(...), got "
            f"{type(deployment).__name__} {deployment!r}."
        )
    result = CheckResult(f"{getattr(deployment, 'flow_name', '?')}/{name}")
    _check_name({"name": name}, 0, False, result)
    result.flow = _check_entrypoint(_python_entrypoint(deployment), Path.cwd(), result)
    if result.flow is not None:
        _check_parameters(result.flow, deployment.parameters or {}, result)
    for index, schedule in enumerate(deployment.schedules or []):
        _record_fire_times(f"schedules[{index}]", schedule, result)
    fields = {"parameters": deployment.parameters, "job_variables": getattr(deployment, "job_variables", {})}
    refs = None if known_refs is None else parse_known_refs(known_refs)
    _check_references(fields, refs, result)
    return result


def assert_deployable(deployment: Any, *, known_refs: Iterable[str] | None = None) -> CheckResult:
    """Fail (with every problem, one per line) unless `deployment` would deploy and run as declared.

    `deployment` is a `RunnerDeployment` from `flow.to_deployment(...)`. The entrypoint must import
    and name the flow, parameters must validate against the flow's signature, schedules must parse;
    with `known_refs` (`variables.NAME`, `blocks.TYPE.NAME`) unknown template references fail too.
    Returns the result (`.fire_times`, `.references`) for further assertions.
    """
    __tracebackhide__ = True
    result = check_deployment_object(deployment, known_refs)
    result.raise_for_problems()
    return result


def _python_entrypoint(deployment: Any) -> str | None:
    entrypoint = getattr(deployment, "entrypoint", None)
    if entrypoint and ":" not in entrypoint and "." in entrypoint:  # a module path entrypoint
        module, _, function = entrypoint.rpartition(".")
        try:
            origin = getattr(importlib.util.find_spec(module), "origin", None)
        except ImportError:
            origin = None  # reported by the entrypoint check, which imports it
        if origin:
            return f"{origin}:{function}"
    return entrypoint


def _check_fields(raw: dict[str, Any], result: CheckResult) -> None:
    from pytest_prefect_flows import _compat

    known = _compat.deployment_config_fields()
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"did you mean `{close[0]}`?" if close else "remove it"
            result.add(str(key), f"not a deployment field; prefect deploy ignores it ({hint}).")
    for location, message in _compat.validate_deployment_config(raw):
        if location and location[0] in ("schedules", "schedule", "entrypoint", "name"):
            continue  # checked below, with a more precise message
        where = ".".join(str(part) for part in location)
        result.add(where, f"{message} (Prefect's prefect.yaml model); fix the value.")


def _check_name(raw: dict[str, Any], index: int, duplicate: bool, result: CheckResult) -> None:
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        result.add("name", f"deployments[{index}] has no name; add `name: my-deployment`.")
    elif duplicate:
        result.add(
            "name",
            f"{name!r} names more than one deployment in this file; `prefect deploy` would apply "
            "only one of them. Give each deployment its own name.",
        )


def _check_entrypoint(entrypoint: Any, base_dir: Path, result: CheckResult) -> Any:
    from pytest_prefect_flows.deployments.entrypoints import EntrypointError, load_flow

    try:
        return load_flow(entrypoint, base_dir)
    except EntrypointError as exc:
        result.add("entrypoint", str(exc))
        return None


def _check_parameters(
    flow: Any, parameters: Any, result: CheckResult, where: str = "parameters", only: Iterable[str] = ()
) -> None:
    """Report problems of `parameters` under `where`; with `only`, just those of these parameter names."""
    if not isinstance(parameters, dict):
        return  # reported by the model check
    names = set(only)
    for name, path, message in _parameter_problems(flow, parameters):
        if not names or name in names:
            result.add(".".join([where, *path]), message)


def _parameter_problems(flow: Any, parameters: dict[str, Any]) -> Iterator[tuple[str, list[str], str]]:
    """(parameter name, path inside `parameters`, message) for each problem, Prefect's schema validator's."""
    signature = inspect.signature(flow.fn)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    templated = {name for name, value in parameters.items() if _placeholders_in(value)}
    accepted = ", ".join(signature.parameters) or "none"
    for name in parameters:
        if name not in signature.parameters and not takes_any:
            yield (
                name,
                [name],
                f"{flow.name!r} has no parameter {name!r} (it takes: {accepted}); remove it or fix the name.",
            )
    concrete = {k: v for k, v in parameters.items() if k not in templated and k in signature.parameters}
    for error in _schema_errors(flow, concrete):
        if error.validator == "required":
            name = error.message.partition(" ")[0].strip("'")
            if name not in templated:
                yield (
                    name,
                    [name],
                    f"missing: {flow.name!r} requires it and has no default; add it under `parameters:`.",
                )
            continue
        path = [str(part) for part in error.absolute_path]
        name = path[0] if path else "?"
        annotation = _annotation(signature, name)
        yield name, path, f"{error.message}; the flow declares `{name}: {annotation}`. Fix the value."


def _schema_errors(flow: Any, values: dict[str, Any]) -> list[Any]:
    from prefect.utilities.schema_tools.validation import validate

    schema = flow.parameters.model_dump_for_openapi()
    return list(validate(values, schema, raise_on_error=False))


def _annotation(signature: inspect.Signature, name: str) -> str:
    parameter = signature.parameters.get(name)
    if parameter is None or parameter.annotation is inspect.Parameter.empty:
        return "Any"
    annotation = parameter.annotation
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _schedule_entries(raw: dict[str, Any]) -> list[tuple[str, Any]]:
    entries: list[tuple[str, Any]] = []
    if raw.get("schedule") is not None:
        entries.append(("schedule", raw["schedule"]))
    schedules = raw.get("schedules")
    if isinstance(schedules, list):
        entries += [(f"schedules[{i}]", config) for i, config in enumerate(schedules)]
    elif schedules is not None:
        entries.append(("schedules", schedules))
    return entries


def _check_schedule_parameters(
    flow: Any, defaults: Any, entries: list[tuple[str, Any]], result: CheckResult
) -> None:
    """A schedule's own `parameters:` override the deployment's for its runs: they must fit the flow too."""
    if not isinstance(defaults, dict):
        return
    for where, config in entries:
        overrides = config.get("parameters") if isinstance(config, dict) else None
        if isinstance(overrides, dict) and overrides:
            merged = {**defaults, **overrides}
            _check_parameters(flow, merged, result, where=f"{where}.parameters", only=overrides)


def _check_schedules(entries: list[tuple[str, Any]], result: CheckResult) -> None:
    from pytest_prefect_flows import _compat

    for where, config in entries:
        if not isinstance(config, dict):
            result.add(where, f"expected a mapping, found {config!r}; {_SCHEDULE_HINT}.")
            continue
        if _placeholders_in(config):
            continue  # filled in by `prefect deploy`; nothing to parse yet
        try:
            schedule = _compat.deployment_schedule_from_yaml(config)
        except UsageError:
            raise  # Prefect's deploy code itself is broken here, not this schedule
        except Exception as exc:
            result.add(where, f"not a valid schedule ({_schedule_error(exc)}); {_SCHEDULE_HINT}.")
            continue
        _record_fire_times(f"{where} {_describe_schedule(schedule)}", schedule, result)


def _schedule_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in errors())
    return str(exc).split(". schedule=")[0]


def _describe_schedule(schedule: Any) -> str:
    for attribute in ("cron", "rrule", "interval"):
        value = getattr(schedule, attribute, None)
        if value is not None:
            return f"({attribute} {value}, {getattr(schedule, 'timezone', None) or 'UTC'})"
    return ""


def _record_fire_times(where: str, schedule: Any, result: CheckResult) -> None:
    from pytest_prefect_flows.clock import next_runs

    try:
        result.fire_times[where] = next_runs(schedule, 3)
    except UsageError as exc:
        result.add(where, str(exc))


def _check_work_pool(work_pool: Any, result: CheckResult) -> None:
    name = work_pool.get("name") if isinstance(work_pool, dict) else None
    if isinstance(work_pool, dict) and isinstance(name, str) and name.strip():
        return
    if work_pool is not None and not isinstance(work_pool, dict):
        return  # reported by the model check
    result.add(
        "work_pool.name",
        "missing: `prefect deploy` would stop to ask for a work pool (and fail in CI); add "
        "`work_pool: {name: my-pool}` or an alias such as `work_pool: *default_work_pool`.",
    )


def _check_steps(section: str, steps_and_origin: tuple[Any, str], result: CheckResult) -> None:
    from prefect.utilities.importtools import import_object

    steps, origin = steps_and_origin
    if steps is None:
        return
    if isinstance(steps, dict):
        steps = [steps]
    if not isinstance(steps, list):
        result.add(origin, f"expected a list of steps, found {type(steps).__name__}.")
        return
    for index, step in enumerate(steps):
        where = f"{origin}[{index}]"
        if not isinstance(step, dict) or len(step) != 1:
            result.add(where, "a step is a mapping with one key, the step function's dotted name.")
            continue
        [name] = step
        try:
            function = import_object(name)
        except Exception as exc:
            requires = (step[name] or {}).get("requires") if isinstance(step[name], dict) else None
            hint = f"install {requires}" if requires else "fix the dotted name or install its package"
            result.add(where, f"step {name!r} cannot be imported ({type(exc).__name__}: {exc}); {hint}.")
            continue
        if not callable(function):
            result.add(where, f"step {name!r} is {type(function).__name__}, not a function.")


def _placeholders_in(value: Any) -> list[Any]:
    from prefect.utilities.templating import find_placeholders

    if isinstance(value, str):
        return list(find_placeholders(value))
    if isinstance(value, dict):
        return [p for item in value.values() for p in _placeholders_in(item)]
    if isinstance(value, list):
        return [p for item in value for p in _placeholders_in(item)]
    return []


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def reference_of(placeholder_name: str) -> str | None:
    """`prefect.variables.x` -> `variables.x`; `prefect.blocks.secret.pw.value` -> `blocks.secret.pw`."""
    parts = placeholder_name.split(".")
    if parts[:2] == ["prefect", "variables"] and len(parts) >= 3:
        return ".".join(parts[1:3])
    if parts[:2] == ["prefect", "blocks"] and len(parts) >= 4:
        return ".".join(parts[1:4])
    return None


def _check_references(fields: dict[str, Any], known: frozenset[str] | None, result: CheckResult) -> None:
    from prefect.utilities.templating import find_placeholders

    for where, text in _strings(fields, ""):
        for placeholder in sorted(find_placeholders(text), key=lambda p: p.name):
            ref = reference_of(placeholder.name)
            if ref is None:
                continue
            if ref not in result.references:
                result.references.append(ref)
            if known is not None and ref not in known:
                result.add(
                    where,
                    f"{{{{ {placeholder.name} }}}} refers to {ref}, which prefect_known_refs does not "
                    f"list ({', '.join(sorted(known)) or 'empty'}); create it in Prefect and add "
                    f"`{ref}` to prefect_known_refs, or fix the name.",
                )
