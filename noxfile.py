"""The version matrix: every supported Prefect minor and every supported Python.

    nox -l                                  # list the sessions
    nox -s "tests(3.6)"                     # one Prefect minor
    nox -s pythons-3.13                     # one Python
    nox -s release -- 3.10.0                # a new Prefect release, whole suite, before it is declared
    nox -s templates                        # the shipped template of every minor (after a patch bump)
    nox -s "templates(3.9)"                 # the shipped template of one minor

Environments are built with uv (`venv_backend="uv"`) and never download an interpreter: a Python
that is not installed fails the session instead of skipping it. docs/supported-versions.md has the
table of what CI runs.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
# What .ci/run runs: every minor, which between them run every Python (PYTHON_FOR); `pythons` runs
# the newest Prefect on one Python when a Python-only change needs checking.
nox.options.sessions = ["tests"]
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
# uv installs without bytecode (pip compiles it): every interpreter the suite starts (pytester and
# xdist workers, import checks) would then compile Prefect from source again, ~2.6 s of CPU each.
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")

# The newest patch of every supported minor, and what else that minor needs installed beside it.
PREFECT = {
    # 3.4 and 3.5 post JSON without a content type, which FastAPI 0.132+ rejects (strict content
    # types): their own server refuses their own client.
    # Before 3.7, Prefect's workers module imports importlib_metadata, which Prefect declares only
    # for Python < 3.10 (`prefect deploy`'s code and the deployment checks import that module).
    "3.4": ("3.4.25", ("fastapi<0.132", "importlib_metadata")),
    "3.5": ("3.5.0", ("fastapi<0.132", "importlib_metadata")),
    "3.6": ("3.6.29", ("importlib_metadata",)),
    "3.7": ("3.7.8", ()),
    "3.8": ("3.8.8", ()),
    "3.9": ("3.9.1", ()),
}
OLDEST, NEWEST = "3.4", "3.9"
# Each Prefect minor runs on one Python, so that old and new Prefect meet every Python. The README's
# test command covers the default pair (the newest Prefect on Python 3.11) with the whole suite.
PYTHON_FOR = {"3.4": "3.10", "3.5": "3.11", "3.6": "3.12", "3.7": "3.13", "3.8": "3.10", "3.9": "3.13"}
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# Where `nox -s templates` and `release` write the template databases the package ships.
SHIPPED_TEMPLATES = "pytest_prefect_flows/backend/shipped_templates"
# The floor of pytest that pyproject declares, tested with the oldest Prefect.
PYTEST_FLOOR = "pytest==8.0.*"
# On the minors between the oldest and the newest: the reference suite, the pytester tests of
# every fixture, and the shipped template against Prefect's migrations. The oldest and the newest
# run the whole suite.
# Sessions that start xdist workers or kill processes (minutes each) run on the oldest and newest only.
REFERENCE_AND_FIXTURES = [
    "example_flows/tests",
    "tests/integration",
    "tests/unit/test_template.py",
    "-k",
    "not xdist and not killed and not interrupted",
]


def _run_tests(session: nox.Session, paths: list[str]) -> None:
    session.run(
        "python", "-c", "import prefect, sys; print('prefect', prefect.__version__, 'python', sys.version)"
    )
    session.run("pytest", "-n", "2", "-p", "no:cacheprovider", "-q", *paths, *session.posargs)


@nox.session
@nox.parametrize("python,prefect", [nox.param(PYTHON_FOR[minor], minor, id=minor) for minor in PREFECT])
def tests(session: nox.Session, prefect: str) -> None:
    """One Prefect minor (its newest patch): the whole suite on the oldest and the newest."""
    version, extra = PREFECT[prefect]
    floor = (PYTEST_FLOOR,) if prefect == OLDEST else ()
    session.install("-e", ".[dev]", f"prefect=={version}", *extra, *floor)
    _run_tests(session, [] if prefect in (OLDEST, NEWEST) else REFERENCE_AND_FIXTURES)


@nox.session(python=PYTHONS)
def pythons(session: nox.Session) -> None:
    """One Python with the newest supported Prefect."""
    version, extra = PREFECT[NEWEST]
    session.install("-e", ".[dev]", f"prefect=={version}", *extra)
    _run_tests(session, REFERENCE_AND_FIXTURES)


@nox.session
def release(session: nox.Session) -> None:
    """A Prefect release given after `--`: its shipped template, then the whole suite.

    e.g. `nox -s release -- 3.10.0`; the suite compares the new template with Prefect's migrations.
    The release may lie outside pyproject's bound on Prefect: uv's `--overrides` replaces the bound.
    """
    if not session.posargs:
        session.error("Name the Prefect release to check: nox -s release -- 3.10.0")
    version, *pytest_args = session.posargs
    # pyproject's `prefect<X` bound excludes the release until it is declared: override it.
    overrides = os.path.join(session.create_tmp(), "prefect-override.txt")
    with open(overrides, "w") as file:
        file.write(f"prefect=={version}\n")
    session.install("-e", ".[dev]", "--overrides", overrides)
    _dump_template(session)
    session.run("pytest", "-n", "2", "-p", "no:cacheprovider", "-q", *pytest_args)


@nox.session
@nox.parametrize("python,prefect", [nox.param(PYTHON_FOR[minor], minor, id=minor) for minor in PREFECT])
def templates(session: nox.Session, prefect: str) -> None:
    """The template database shipped for one Prefect minor (its newest patch).

    Built by Prefect's own migrations in an environment of that release.
    """
    version, extra = PREFECT[prefect]
    session.install("-e", ".", f"prefect=={version}", *extra)
    _dump_template(session)


def _dump_template(session: nox.Session) -> None:
    session.run("python", "-m", "pytest_prefect_flows._template", "dump", SHIPPED_TEMPLATES)
