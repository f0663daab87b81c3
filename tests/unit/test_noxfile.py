"""The sessions the noxfile's docstring and docs/supported-versions.md name are those `nox -l` lists,
and `nox -s release -- X.Y.Z` can install a release beyond pyproject's bound on Prefect."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]


def _listed_sessions() -> set[str]:
    listing = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--no-color", "-f", str(ROOT / "noxfile.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sessions = {match[1] for match in re.finditer(r"^[*-] (\S+)", listing, re.MULTILINE)}
    return sessions | {re.split(r"[(-]", session)[0] for session in sessions}  # `nox -s tests`: all of them


def _named_sessions(text: str) -> set[str]:
    return {name.strip("\"'`") for name in re.findall(r"nox -s (\"[^\"]+\"|[^\s`]+)", text)}


def test_the_documented_sessions_are_those_nox_lists() -> None:
    named = _named_sessions((ROOT / "noxfile.py").read_text()) | _named_sessions(
        (ROOT / "docs" / "supported-versions.md").read_text()
    )

    assert named, "no `nox -s ...` found"
    assert named <= _listed_sessions(), f"not listed by `nox -l`: {sorted(named - _listed_sessions())}"


def test_release_overrides_the_prefect_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the noxfile sets UV_* defaults
    spec = importlib.util.spec_from_file_location("noxfile_under_test", ROOT / "noxfile.py")
    assert spec is not None
    assert spec.loader is not None
    noxfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noxfile)
    installs: list[tuple[Any, ...]] = []
    session = SimpleNamespace(
        posargs=["3.10.0"],
        create_tmp=lambda: str(tmp_path),
        install=lambda *args: installs.append(args),
        run=lambda *args, **kwargs: None,
        error=pytest.fail,
    )

    noxfile.release.func(session)

    [install] = installs
    overrides = Path(install[install.index("--overrides") + 1])
    assert overrides.read_text() == "prefect==3.10.0\n"
    assert not any(str(arg).startswith("prefect==") for arg in install), "a plain pin cannot be resolved"
