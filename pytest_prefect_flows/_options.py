"""Command-line/ini options and the `prefect` marker's keyword-only options.

Every value is checked before any test runs: ini and command-line values when the session is
configured, marker keywords when the tests are collected. A wrong one is a usage error (exit
code 4) naming the option, the value and the values it takes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import inspect
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_prefect_flows.exceptions import UsageError
from pytest_prefect_flows.hooks import MODES as HOOK_ERROR_MODES
from pytest_prefect_flows.ready import START_MODES

MARKER_HELP = (
    "prefect(*, fast_retries=None, log_level=None, timeout=None, check_unused_faults=True, "
    "assert_all_called=True, hook_errors=None, skip_sleeps=False, block_network=None, isolation=None): "
    "per-test settings of pytest-prefect-flows "
    "(fast_retries: record retry delays instead of sleeping; log_level: level of captured run logs; "
    "timeout: hang guard in seconds for each flow run; check_unused_faults: fail when an injected "
    "fault never fired; assert_all_called: fail when a prefect_http route was never called; "
    "hook_errors: warn | fail | ignore when a state hook raised; skip_sleeps: sleeps in flow and "
    "task code advance prefect_clock instead of waiting; block_network: refuse non-loopback "
    "connections from flow and task code; isolation: session | test, test = the API holds nothing "
    "from earlier tests when the test starts)."
)

GATE_MODES = ("whole-suite", "always")
ISOLATION_MODES = ("session", "test")
_BOOLEANS = {
    **dict.fromkeys(("true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}
_BOOLEAN_WORDS = "true/false, 1/0, yes/no or on/off (any case)"


class _Invalid(ValueError):
    """A value an option does not take; the text says why and what it takes (no option name)."""


def parse_bool(value: object) -> bool:
    """`True`/`False`, or true/false, 1/0, yes/no, on/off in any case; anything else is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    raise _Invalid(f"{value!r} is not a boolean; use {_BOOLEAN_WORDS}")


def _number(value: object, what: str) -> float:
    number = None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None or not math.isfinite(number):
        raise _Invalid(f"{value!r} is not {what}; nan and infinities are refused")
    return number


def parse_seconds(value: object) -> float:
    """A finite number of seconds >= 0 (0: no guard)."""
    what = "a number of seconds >= 0 (0 = no guard)"
    number = _number(value, what)
    if number < 0:
        raise _Invalid(f"{value!r} is not {what}")
    return number


def _percent(value: str) -> float:
    number = _number(value, "a percentage (0-100)")
    if not 0 <= number <= 100:
        raise _Invalid(f"{value!r} is not a percentage (0-100)")
    return number


def _backend(value: str) -> str:
    from pytest_prefect_flows.backend import parse_backend

    try:
        parse_backend(value)
    except UsageError:
        raise _Invalid(
            f"{value!r} is not a backend; use `ephemeral` (an isolated local backend) or "
            "`server:<URL>` (an existing Prefect server, e.g. server:http://127.0.0.1:4200/api)"
        ) from None
    return value


def _report(value: str) -> str:
    kind, _, path = value.partition(":")
    if (kind in ("term", "term-full") and not path) or (kind in ("json", "html") and path):
        return value
    raise _Invalid(f"{value!r} is not a report; use term, term-full, json:<path> or html:<path>")


def _choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if value in choices:
            return str(value)
        raise _Invalid(f"{value!r} is not one of {', '.join(choices)}")

    return convert


@dataclasses.dataclass(frozen=True)
class Option:
    """An ini option and its `--prefect-...` command-line twin (the command line wins)."""

    ini_type: str  # "string" | "bool" | "linelist"
    default: Any
    help: str
    convert: Callable[[Any], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    def check(self, value: Any) -> Any:
        if self.choices is not None:
            return _choice(self.choices)(value)
        if self.ini_type == "bool":
            return parse_bool(value)
        if self.convert is None:
            return value
        if self.ini_type == "linelist":
            return [self.convert(item) for item in value]
        return self.convert(value)

    def help_text(self) -> str:
        default = self.default
        if isinstance(default, list):
            default = ", ".join(default) or "none"
        elif isinstance(default, bool):
            default = str(default).lower()
        return f"{self.help} (default: {default})"


OPTIONS: dict[str, Option] = {
    "prefect_backend": Option(
        "string",
        "ephemeral",
        "`ephemeral` (isolated local backend) or `server:<URL>`",
        _backend,
        metavar="ephemeral|server:URL",
    ),
    "prefect_start": Option(
        "string",
        "ahead",
        "how the isolated backend starts: ahead (Prefect's server imported during collection, once "
        "a collected test module uses Prefect; the server starts on the first flow run) | lazy "
        "(all of it when the first flow run connects)",
        choices=START_MODES,
    ),
    "prefect_flow_paths": Option(
        "linelist",
        [],
        "packages/dirs whose flows and tasks count for coverage and import checks",
        metavar="PATH",
    ),
    "prefect_cov_fail_under": Option(
        "string",
        "0",
        "fail when fewer than this percent of discovered tasks ran",
        _percent,
        metavar="PERCENT",
    ),
    "prefect_require_retry_tested": Option(
        "bool", False, "fail when a task with retries>0 was never seen retrying"
    ),
    "prefect_report": Option(
        "linelist",
        ["term"],
        "flow coverage report: term (fits a screen) | term-full (every flow and task) | json:<path> | "
        "html:<path> (repeatable)",
        _report,
        metavar="term|term-full|json:PATH|html:PATH",
    ),
    "prefect_gates": Option(
        "string",
        "whole-suite",
        "when the coverage gates apply: whole-suite (skipped, with a one-line note, when -k, -m, "
        "--lf, node ids or paths select part of the suite) | always",
        choices=GATE_MODES,
    ),
    "prefect_cov_count_direct": Option(
        "bool", True, "count a task whose function ran only directly (e.g. task.fn(...)) as exercised"
    ),
    "prefect_fast_retries": Option("bool", True, "record retry delays instead of sleeping them"),
    "prefect_check_deployments": Option(
        "bool", False, "collect every deployment of every prefect.yaml as a test item"
    ),
    "prefect_known_refs": Option(
        "linelist",
        [],
        "template references that exist (variables.NAME, blocks.TYPE.NAME); others fail the deployment check",
        metavar="REF",
    ),
    "prefect_timeout": Option(
        "string",
        "0",
        "hang guard: fail a flow run after this many seconds (0 = off)",
        parse_seconds,
        metavar="SECONDS",
    ),
    "prefect_hook_errors": Option(
        "string",
        "warn",
        "when a state hook raises (Prefect only logs it): warn | fail | ignore",
        choices=HOOK_ERROR_MODES,
    ),
    "prefect_block_network": Option(
        "bool", False, "refuse non-loopback connections from flow and task code (off: warn about them)"
    ),
    "prefect_isolation": Option(
        "string",
        "session",
        "what a test finds in the isolated API: session (runs, deployments, artifacts of earlier tests) "
        "| test (nothing from earlier tests; the server keeps running)",
        choices=ISOLATION_MODES,
    ),
}

values_key = pytest.StashKey[dict[str, Any]]()


def _command_line(convert: Callable[[str], Any], flag: str) -> Callable[[str], Any]:
    """`convert` as an argparse `type=`: its reason becomes argparse's error for `flag`."""

    def from_command_line(value: str) -> Any:
        try:
            return convert(value)
        except _Invalid as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    from_command_line.__name__ = flag
    return from_command_line


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("prefect_flows", "pytest-prefect-flows")
    for name, option in OPTIONS.items():
        parser.addini(name, option.help_text(), type=option.ini_type, default=option.default)  # type: ignore[arg-type]
        flag = "--" + name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": option.help_text()}
        if option.convert is not None:
            kwargs["type"] = _command_line(option.convert, flag)
        if option.choices is not None:
            kwargs["choices"] = option.choices
            kwargs["metavar"] = "{" + ",".join(option.choices) + "}"  # pytest < 8.1 shows DEST otherwise
        if option.metavar is not None:
            kwargs["metavar"] = option.metavar
        if option.ini_type == "linelist":
            group.addoption(flag, action="append", **kwargs)
        elif option.ini_type == "bool":
            group.addoption(flag, dest=name, action="store_const", const=True, default=None, help=option.help)
            group.addoption(
                flag.replace("--prefect-", "--prefect-no-"),
                dest=name,
                action="store_const",
                const=False,
                help=f"turn off {flag} (default: {'on' if option.default else 'off'})",
            )
        else:
            group.addoption(flag, **kwargs)
    group.addoption(
        "--prefect-check-imports",
        action="store_true",
        default=False,
        help="import every module under prefect_flow_paths, build each flow's schema and "
        "deployment; fail on errors",
    )
    group.addoption(
        "--prefect-record",
        metavar="PATH",
        default=None,
        help="write every test's flow-run trees (states, attempts, tasks) to PATH, a JSON baseline",
    )
    group.addoption(
        "--prefect-compare",
        metavar="PATH",
        default=None,
        help="fail the tests whose flow runs differ from the baseline at PATH (see --prefect-record)",
    )


def check_all(config: pytest.Config) -> None:
    """Read and check every option now, so a wrong ini value stops the session before any test."""
    config.stash[values_key] = {name: _read(config, name) for name in OPTIONS}


def get(config: pytest.Config, name: str) -> Any:
    """The option's value: the command line wins over the ini file; checked either way."""
    values = config.stash.get(values_key, None)
    if values is not None:
        return values[name]
    return _read(config, name)


def _read(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name, default=None)
    if value is not None:
        return value  # checked by argparse
    option = OPTIONS[name]
    try:
        value = config.getini(name)
    except (ValueError, pytest.UsageError) as exc:  # pytest's own reading of a bool
        if option.ini_type != "bool":
            raise
        raw = str(exc).rpartition("invalid truth value ")[2] or str(exc)
        raise UsageError(f"ini option {name}: {raw} is not a boolean; use {_BOOLEAN_WORDS}.") from None
    try:
        return option.check(value)
    except _Invalid as exc:
        raise UsageError(f"ini option {name}: {exc}.") from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class MarkerOptions:
    """Keyword arguments of `@pytest.mark.prefect(...)`; a misspelt one is a usage error."""

    fast_retries: bool | None = None
    log_level: int | str | None = None
    timeout: float | None = None
    check_unused_faults: bool = True
    assert_all_called: bool = True
    hook_errors: str | None = None
    skip_sleeps: bool = False
    block_network: bool | None = None
    isolation: str | None = None

    def resolved(self, config: pytest.Config) -> MarkerOptions:
        fast = get(config, "prefect_fast_retries") if self.fast_retries is None else self.fast_retries
        timeout = get(config, "prefect_timeout") if self.timeout is None else self.timeout
        hooks = get(config, "prefect_hook_errors") if self.hook_errors is None else self.hook_errors
        block = get(config, "prefect_block_network") if self.block_network is None else self.block_network
        isolation = get(config, "prefect_isolation") if self.isolation is None else self.isolation
        return dataclasses.replace(
            self,
            fast_retries=bool(fast),
            timeout=float(timeout) or None,
            hook_errors=hooks,
            block_network=bool(block),
            isolation=isolation,
        )


def _log_level(value: object) -> int:
    level = logging.getLevelName(value.upper()) if isinstance(value, str) else value
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    raise _Invalid(f"{value!r} is not a logging level; use DEBUG, INFO, WARNING, ERROR, CRITICAL or a number")


_MARKER_CHECKS: dict[str, Callable[[Any], Any]] = {
    "fast_retries": parse_bool,
    "log_level": _log_level,
    "timeout": parse_seconds,
    "check_unused_faults": parse_bool,
    "assert_all_called": parse_bool,
    "hook_errors": _choice(HOOK_ERROR_MODES),
    "skip_sleeps": parse_bool,
    "block_network": parse_bool,
    "isolation": _choice(ISOLATION_MODES),
}


_MARKER_DEFAULTS = {name: p.default for name, p in inspect.signature(MarkerOptions).parameters.items()}


def _marker_keywords() -> list[str]:
    return list(_MARKER_DEFAULTS)


def _checked_kwargs(item: pytest.Item, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    where = f"{item.nodeid}: @pytest.mark.prefect"
    checked = {}
    for keyword, value in kwargs.items():
        if keyword not in _MARKER_CHECKS:
            close = difflib.get_close_matches(keyword, _marker_keywords(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(
                f"{where}({keyword}=...) has no keyword {keyword!r}; {hint}"
                f"it takes {', '.join(_marker_keywords())}."
            )
        try:
            optional = value is None and _MARKER_DEFAULTS[keyword] is None
            checked[keyword] = None if optional else _MARKER_CHECKS[keyword](value)
        except _Invalid as exc:
            raise UsageError(f"{where}({keyword}={value!r}): {exc}.") from None
    return checked


def marker_options(item: pytest.Item) -> MarkerOptions:
    """Merge `prefect` markers: the closest (function, then class, then module) wins per keyword."""
    merged: dict[str, Any] = {}
    for marker in reversed(list(item.iter_markers("prefect"))):
        if marker.args:
            raise UsageError(
                f"{item.nodeid}: @pytest.mark.prefect takes keyword arguments only, got {marker.args!r}; "
                f"its keywords are {', '.join(_marker_keywords())}."
            )
        merged.update(_checked_kwargs(item, marker.kwargs))
    return MarkerOptions(**merged).resolved(item.config)


def test_options(item: pytest.Item) -> MarkerOptions:
    """The test's options; a mistake in its markers fails it with the message alone (an xdist
    worker cannot end the session while it collects, as `check_markers` does)."""
    try:
        return marker_options(item)
    except UsageError as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


def check_markers(items: list[pytest.Item]) -> None:
    """Check every collected test's `prefect` markers; all the mistakes in one usage error."""
    problems = []
    for item in items:
        try:
            marker_options(item)
        except UsageError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("\n".join(problems))


def wants_skip_sleeps(item: pytest.Item) -> bool:
    """Whether the closest `prefect` marker that says `skip_sleeps=` says True."""
    for marker in item.iter_markers("prefect"):
        if marker.kwargs.get("skip_sleeps") is not None:
            return parse_bool(marker.kwargs["skip_sleeps"])
    return False
