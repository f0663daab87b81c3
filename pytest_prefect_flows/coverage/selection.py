"""Whether a session ran the whole suite, or a selection of it (gates apply to whole-suite runs only).

The whole suite is what a bare `pytest` in the rootdir runs: `testpaths`, `addopts` and conftest
deselection define it. A selection is what the command line narrows it to: `-k`, `-m`,
`--deselect`, `--ignore`, `--lf` (with failures on record), `--sw`, file or node-id arguments that
leave part of the suite out, or `pytest` run from a subdirectory. A session stopped early
(`-x`, `--maxfail`) did not run the whole suite either, nor does one shard of pytest-split's
`--splits` (`coverage/merge.py` gates the shards together).
"""

from __future__ import annotations

import argparse
import glob
import os
from fnmatch import fnmatch
from pathlib import Path

import pytest

parser_key = pytest.StashKey[pytest.Parser]()

# dest -> how the command line option reads in the note
_NARROWING_OPTIONS = {
    "keyword": "-k",
    "markexpr": "-m",
    "deselect": "--deselect",
    "ignore": "--ignore",
    "ignore_glob": "--ignore-glob",
    "stepwise": "--sw",
}


def command_line(config: pytest.Config) -> argparse.Namespace:
    """The options given on the command line itself (not `addopts` nor `PYTEST_ADDOPTS`)."""
    parser = config.stash.get(parser_key, None)
    # registered after the command line was parsed; or --help, whose action pytest 8.0 runs again
    if parser is None or config.option.help:
        return config.option
    return parser.parse_known_args(list(config.invocation_params.args))


def import_check_alone(config: pytest.Config) -> bool:
    """`--prefect-check-imports` on the command line with no path or node id: the check, no tests.

    From `addopts` the flag adds the check to every session instead.
    """
    given = command_line(config)
    return bool(getattr(given, "prefect_check_imports", False)) and not getattr(given, "file_or_dir", None)


def selection_reason(config: pytest.Config, session: pytest.Session) -> str | None:
    """Why this session is not a whole-suite run, or None when it ran the whole suite."""
    stopped = session.shouldfail or session.shouldstop
    if stopped:
        detail = f" ({stopped})" if isinstance(stopped, str) else ""
        return f"the session stopped early{detail}"
    shard = _shard(config)
    if shard is not None:
        return shard
    given = command_line(config)
    for dest, flag in _NARROWING_OPTIONS.items():
        if getattr(given, dest, None):
            return f"{flag} selects part of the suite"
    if getattr(given, "lf", False) and _failures_on_record(config):
        return "--lf reruns only the tests that failed last time"
    return _narrower_paths(config, getattr(given, "file_or_dir", None) or [])


def _shard(config: pytest.Config) -> str | None:
    """pytest-split's `--splits N --group G`, wherever given, runs one shard of the suite."""
    splits = getattr(config.option, "splits", None)
    if not splits:
        return None
    return (
        f"pytest-split runs group {getattr(config.option, 'group', '?')} of {splits} "
        "(`python -m pytest_prefect_flows merge` applies the gates to the shards' JSON reports)"
    )


def _failures_on_record(config: pytest.Config) -> bool:
    cache = getattr(config, "cache", None)
    return bool(cache is not None and cache.get("cache/lastfailed", {}))


def _narrower_paths(config: pytest.Config, arguments: list[str]) -> str | None:
    rootpath = config.rootpath
    invocation_dir = config.invocation_params.dir
    where = "the paths given leave out"
    if not arguments:
        if invocation_dir == rootpath:
            return None
        arguments = [str(invocation_dir)]
        where = f"running from {_relative(invocation_dir, rootpath)} leaves out"
    if config.option.pyargs:
        missing = sorted(set(config.getini("testpaths")) - set(arguments))
        return f"the arguments leave out {', '.join(missing)}" if missing else None
    node_ids = [argument for argument in arguments if "::" in argument]
    if node_ids:
        return f"node ids select part of the suite ({node_ids[0]}{', ...' if len(node_ids) > 1 else ''})"
    left_out = _first_test_file_left_out(config, [(invocation_dir / path).resolve() for path in arguments])
    return None if left_out is None else f"{where} test files such as {_relative(left_out, rootpath)}"


def _suite_roots(config: pytest.Config) -> list[Path]:
    """What a bare `pytest` in the rootdir collects: the `testpaths` (globs expanded), else the rootdir."""
    rootpath = config.rootpath
    roots = [
        Path(found).resolve()
        for pattern in config.getini("testpaths")
        for found in sorted(glob.iglob(str(rootpath / pattern), recursive=True))
    ]
    return roots or [rootpath.resolve()]


def _first_test_file_left_out(config: pytest.Config, given: list[Path]) -> Path | None:
    """A file of the suite (`python_files`, outside `norecursedirs`) under none of the paths given.

    Paths are compared with files, not folders: `pytest tests` runs the whole suite of a rootdir
    whose only tests live in `tests/`, with or without `testpaths`.
    """
    patterns, skipped_dirs = config.getini("python_files"), config.getini("norecursedirs")

    def covered(path: Path) -> bool:
        return any(_contains(path, argument) for argument in given)

    for root in _suite_roots(config):
        if root.is_file():
            if not covered(root):
                return root
            continue
        for folder, dirnames, filenames in os.walk(root):
            here = Path(folder)
            if covered(here):
                dirnames[:] = []
                continue
            dirnames[:] = sorted(d for d in dirnames if not any(fnmatch(d, p) for p in skipped_dirs))
            for name in sorted(filenames):
                if any(fnmatch(name, p) for p in patterns) and not covered(here / name):
                    return here / name
    return None


def _contains(path: Path, root: Path) -> bool:
    """Whether `path` is `root` or lies under it."""
    return root == path or root in path.parents


def _relative(path: Path, rootpath: Path) -> str:
    try:
        return str(path.resolve().relative_to(rootpath.resolve()))
    except ValueError:
        return str(path)
