"""One reader for `prefect.yaml` files, used by flow coverage and the deployment checks.

Works without pytest and without importing Prefect::

    for project in find_projects(Path.cwd()):
        for deployment in project.deployments:
            print(deployment.name, deployment.entrypoint_path)

YAML anchors and aliases (`*default_work_pool`, `<<: *defaults`) are resolved by the YAML loader;
`definitions:` is kept as read. Entrypoints are resolved against the file's own directory, which is
where `prefect deploy` runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_prefect_flows.exceptions import UsageError

FILE_NAMES = ("prefect.yaml", "prefect.yml")
_SKIPPED_DIRS = frozenset({"node_modules", "site-packages", "__pycache__", "build", "dist", "venv"})


@dataclass
class DeploymentSpec:
    """One entry of a `prefect.yaml` file's `deployments:` list, as written (anchors resolved)."""

    file: Path
    index: int
    name: str
    raw: dict[str, Any] = field(repr=False)

    @property
    def entrypoint(self) -> str | None:
        value = self.raw.get("entrypoint")
        return value if isinstance(value, str) else None

    @property
    def entrypoint_path(self) -> Path | None:
        """The entrypoint's Python file, resolved against the `prefect.yaml` file's directory."""
        if self.entrypoint is None or ":" not in self.entrypoint:
            return None
        return (self.file.parent / self.entrypoint.rsplit(":", 1)[0]).resolve()

    @property
    def entrypoint_function(self) -> str | None:
        """The flow function's name in the entrypoint (`path.py:name`)."""
        if self.entrypoint is None or ":" not in self.entrypoint:
            return None
        return self.entrypoint.rsplit(":", 1)[1]

    @property
    def triggers(self) -> list[dict[str, Any]]:
        """The `triggers:` entries as written (automations that run this deployment); a `UsageError` if
        the section is not a list of mappings."""
        value = self.raw.get("triggers") or []
        if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
            raise UsageError(
                f"{self.label}: `triggers:` must be a list of trigger mappings, found {value!r}."
            )
        return value

    @property
    def label(self) -> str:
        """How reports name it: `path/to/prefect.yaml::name`."""
        return f"{self.file}::{self.name}"


@dataclass
class PrefectProject:
    """A whole `prefect.yaml` file: its deployments and the project-level sections."""

    file: Path
    raw: dict[str, Any] = field(repr=False)
    deployments: list[DeploymentSpec] = field(default_factory=list)

    def deployment(self, name: str) -> DeploymentSpec:
        """The deployment named `name`; a `UsageError` listing the names there are otherwise."""
        for spec in self.deployments:
            if spec.name == name:
                return spec
        names = ", ".join(repr(spec.name) for spec in self.deployments) or "none"
        raise UsageError(f"{self.file}: no deployment named {name!r}; deployments: {names}.")

    def section(self, name: str) -> Any:
        """A top-level section (`pull`, `build`, `push`, `definitions`, ...) or None."""
        return self.raw.get(name)

    def steps_for(self, spec: DeploymentSpec, section: str) -> tuple[Any, str]:
        """The `build`/`push`/`pull` steps `spec` runs (its own, else the file's) and where they are."""
        if section in spec.raw:
            return spec.raw[section], section
        return self.section(section), f"{section} (top level)"


def load_project(path: Path | str) -> PrefectProject:
    """Read one `prefect.yaml`; a file that is not valid YAML or not a mapping is a `UsageError`."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc}). Fix the file.") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror}).") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping at the top level, found {type(data).__name__}.")
    project = PrefectProject(file=path, raw=data)
    entries = data.get("deployments") or []
    if not isinstance(entries, list):
        raise UsageError(f"{path}: `deployments:` must be a list, found {type(entries).__name__}.")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            entry = {"__invalid__": entry}
        name = entry.get("name")
        project.deployments.append(
            DeploymentSpec(
                file=path,
                index=index,
                name=name if isinstance(name, str) and name else f"deployments[{index}]",
                raw=entry,
            )
        )
    return project


def find_files(root: Path | str) -> list[Path]:
    """Every `prefect.yaml` under `root`, skipping hidden folders, virtualenvs and build output."""
    found: list[Path] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if _searched(Path(directory, d)))
        found.extend(Path(directory, name) for name in sorted(files) if name in FILE_NAMES)
    return found


def _searched(directory: Path) -> bool:
    name = directory.name
    return not (name.startswith(".") or name in _SKIPPED_DIRS or (directory / "pyvenv.cfg").exists())


def find_projects(root: Path | str) -> Iterator[PrefectProject]:
    """`load_project` for every file `find_files` finds."""
    for path in find_files(root):
        yield load_project(path)
