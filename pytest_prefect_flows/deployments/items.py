"""`--prefect-check-deployments`: every deployment of every `prefect.yaml` as its own pytest item.

Node ids are `path/to/prefect.yaml::<deployment name>`, so deployments show in the report, in `-k`
selection and in JUnit XML, and fail one by one. `-v` lists each deployment's next fire times and
template references after the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_prefect_flows import _options
from pytest_prefect_flows.exceptions import DeploymentCheckError, UsageError
from pytest_prefect_flows.prefect_yaml import (
    FILE_NAMES,
    DeploymentSpec,
    PrefectProject,
    find_files,
    load_project,
)

NOTE = "deployment"  # the user property (also in JUnit XML) holding a fire-times or references line


class DeploymentGate:
    """The plugin object registered when the gate is on."""

    def __init__(self, config: pytest.Config) -> None:
        _known_refs(_options.get(config, "prefect_known_refs"))
        _add_files_outside_testpaths(config)

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.name in FILE_NAMES:
            return DeploymentFile.from_parent(parent, path=file_path)
        return None

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        """Under `-v`: each deployment's notes, read from the reports (so xdist workers' count too)."""
        notes = {
            report.nodeid: [value for key, value in report.user_properties if key == NOTE]
            for outcome in ("passed", "failed")
            for report in terminalreporter.stats.get(outcome, [])
            if report.when == "call"
        }
        notes = {nodeid: lines for nodeid, lines in notes.items() if lines}
        if config.get_verbosity() < 1 or not notes:
            return
        terminalreporter.section("prefect deployments")
        for nodeid, lines in notes.items():
            terminalreporter.write_line(nodeid)
            for line in lines:
                terminalreporter.write_line(f"    {line}")


def _known_refs(lines: list[str]) -> frozenset[str] | None:
    """The references listed (ini and `pytest_prefect_known_refs` hooks); None when nobody lists any."""
    from pytest_prefect_flows.deployments.checks import parse_known_refs

    return parse_known_refs(lines) if lines else None


def _add_files_outside_testpaths(config: pytest.Config) -> None:
    """With `testpaths` set and no paths given, `prefect.yaml` files elsewhere in the repo count too."""
    if config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
        return
    searched = [Path(arg).resolve() for arg in config.args]
    for path in find_files(config.rootpath):
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in searched):
            config.args.append(str(path))


class DeploymentFile(pytest.File):
    """One `prefect.yaml`: an item per deployment (or one failing item if the file cannot be read)."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            project = load_project(self.path)
        except UsageError as exc:
            yield BrokenFileItem.from_parent(self, name="(file)", error=str(exc))
            return
        counts = Counter(spec.name for spec in project.deployments)
        seen: Counter[str] = Counter()
        for spec in project.deployments:
            seen[spec.name] += 1
            name = spec.name if seen[spec.name] == 1 else f"{spec.name}#{seen[spec.name]}"
            yield DeploymentItem.from_parent(
                self, name=name, spec=spec, project=project, duplicate=counts[spec.name] > 1
            )


class DeploymentItem(pytest.Item):
    """The checks of one deployment; fails with one line per problem."""

    def __init__(
        self, *, spec: DeploymentSpec, project: PrefectProject, duplicate: bool, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.project = project
        self.duplicate = duplicate

    def runtest(self) -> None:
        from pytest_prefect_flows.deployments.checks import check_spec

        from_hooks = self.ihook.pytest_prefect_known_refs(config=self.config)
        lines = [
            *_options.get(self.config, "prefect_known_refs"),
            *(ref for refs in from_hooks for ref in refs),
        ]
        result = check_spec(self.spec, self.project, _known_refs(lines), self.duplicate)
        result.label = self.nodeid
        self.user_properties.extend((NOTE, note) for note in result.notes())
        result.raise_for_problems()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (DeploymentCheckError, UsageError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"deployment {self.spec.name}"


class BrokenFileItem(pytest.Item):
    """A `prefect.yaml` that is not valid YAML (e.g. an undefined `*alias`) fails as one item."""

    def __init__(self, *, error: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise DeploymentCheckError(f"{self.error}\n  (a YAML alias must name an anchor defined above it)")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "prefect.yaml"
