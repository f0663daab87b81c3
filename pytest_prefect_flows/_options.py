"""Command-line/ini options and the `prefect` marker's keyword-only options."""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable
from typing import Any

import pytest

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


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise pytest.UsageError(f"expected true or false, got {value!r}")


def _percent(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise pytest.UsageError(
            f"--prefect-cov-fail-under takes a percentage (0-100), got {value!r}"
        ) from None
    if not 0 <= number <= 100:
        raise pytest.UsageError(f"--prefect-cov-fail-under takes a percentage (0-100), got {value!r}")
    return number


def _backend(value: str) -> str:
    from pytest_prefect_flows.backend import parse_backend
    from pytest_prefect_flows.exceptions import UsageError

    try:
        parse_backend(value)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    return value


def _report(value: str) -> str:
    kind, _, path = value.partition(":")
    if (kind in ("term", "term-full") and not path) or (kind in ("json", "html") and path):
        return value
    raise pytest.UsageError(
        f"--prefect-report={value!r} is not a report; "
        "use `term`, `term-full`, `json:<path>` or `html:<path>`."
    )


GATE_MODES = ("whole-suite", "always")


def _choice(option: str, modes: tuple[str, ...], meaning: str) -> Callable[[str], str]:
    """A converter that accepts one of `modes` and otherwise names them and what they mean."""

    def convert(value: str) -> str:
        if value in modes:
            return value
        raise pytest.UsageError(
            f"{option}={value!r} is not a mode; use one of {', '.join(modes)} ({meaning})."
        )

    return convert


_gates = _choice(
    "--prefect-gates",
    GATE_MODES,
    "whole-suite: skip the gates when the command line selects part of the suite; always: apply them",
)


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number < 0:
        raise pytest.UsageError(f"prefect_timeout takes seconds (0 = no guard), got {value!r}")
    return number


def _hook_errors(value: str) -> str:
    from pytest_prefect_flows.hooks import MODES

    return _choice(
        "prefect_hook_errors",
        MODES,
        "warn: a pytest warning on the test; fail: the test fails; ignore: nothing",
    )(value)


ISOLATION_MODES = ("session", "test")

_isolation = _choice(
    "prefect_isolation",
    ISOLATION_MODES,
    "session: what a test saved in blocks, variables and concurrency limits is removed after it, runs "
    "and the rest stay; test: the API holds nothing from earlier tests when the test starts",
)


def _start(value: str) -> str:
    from pytest_prefect_flows.ready import START_MODES

    return _choice(
        "prefect_start",
        START_MODES,
        "ahead: import Prefect's server during collection, once a collected test module uses "
        "Prefect; lazy: all of the start on the first flow run",
    )(value)


# name -> (ini type, default, converter, help)
OPTIONS: dict[str, tuple[str, Any, Any, str]] = {
    "prefect_backend": (
        "string",
        "ephemeral",
        _backend,
        "`ephemeral` (isolated local backend) or `server:<URL>`",
    ),
    "prefect_start": (
        "string",
        "ahead",
        _start,
        "how the isolated backend starts: ahead (Prefect's server imported during collection, once "
        "a collected test module uses Prefect; the server starts on the first flow run) | lazy "
        "(all of it when the first flow run connects)",
    ),
    "prefect_flow_paths": (
        "linelist",
        [],
        None,
        "packages/dirs whose flows and tasks count for coverage and import checks",
    ),
    "prefect_cov_fail_under": (
        "string",
        "0",
        _percent,
        "fail when fewer than this percent of discovered tasks ran",
    ),
    "prefect_require_retry_tested": (
        "bool",
        False,
        _bool,
        "fail when a task with retries>0 was never seen retrying",
    ),
    "prefect_report": (
        "linelist",
        ["term"],
        _report,
        "flow coverage report: term (fits a screen) | term-full (every flow and task) | json:<path> | "
        "html:<path> (repeatable)",
    ),
    "prefect_gates": (
        "string",
        "whole-suite",
        _gates,
        "when the coverage gates apply: whole-suite (skipped, with a one-line note, when -k, -m, "
        "--lf, node ids or paths select part of the suite) | always",
    ),
    "prefect_cov_count_direct": (
        "bool",
        True,
        _bool,
        "count a task whose function ran only directly (e.g. task.fn(...)) as exercised",
    ),
    "prefect_fast_retries": ("bool", True, _bool, "record retry delays instead of sleeping them"),
    "prefect_check_deployments": (
        "bool",
        False,
        _bool,
        "collect every deployment of every prefect.yaml as a test item",
    ),
    "prefect_known_refs": (
        "linelist",
        [],
        None,
        "template references that exist (variables.NAME, blocks.TYPE.NAME); others fail the deployment check",
    ),
    "prefect_timeout": (
        "string",
        "0",
        _seconds,
        "hang guard: fail a flow run after this many seconds (0 = off)",
    ),
    "prefect_hook_errors": (
        "string",
        "warn",
        _hook_errors,
        "when a state hook raises (Prefect only logs it): warn | fail | ignore",
    ),
    "prefect_block_network": (
        "bool",
        False,
        _bool,
        "refuse non-loopback connections from flow and task code (off: warn about them)",
    ),
    "prefect_isolation": (
        "string",
        "session",
        _isolation,
        "what a test finds in the isolated API: session (runs, deployments, artifacts of earlier tests) "
        "| test (nothing from earlier tests; the server keeps running)",
    ),
}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("prefect_flows", "pytest-prefect-flows")
    for name, (ini_type, default, converter, help_text) in OPTIONS.items():
        parser.addini(name, help_text, type=ini_type, default=default)  # type: ignore[arg-type]
        flag = "--" + name.replace("_", "-")
        if ini_type == "linelist":
            group.addoption(flag, dest=name, action="append", type=converter, default=None, help=help_text)
        elif ini_type == "bool":
            group.addoption(flag, dest=name, action="store_const", const=True, default=None, help=help_text)
            group.addoption(
                flag.replace("--prefect-", "--prefect-no-"),
                dest=name,
                action="store_const",
                const=False,
                help=f"turn off {flag}",
            )
        else:
            group.addoption(flag, dest=name, type=converter, default=None, help=help_text)
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


def get(config: pytest.Config, name: str) -> Any:
    """The option's value: the command line wins over the ini file; validated either way."""
    value = config.getoption(name, default=None)
    if value is not None:
        return value
    ini_type, _, converter, _ = OPTIONS[name]
    value = config.getini(name)
    if converter is None or ini_type == "bool":
        return value
    if ini_type == "linelist":
        return [converter(item) for item in value]
    return converter(value)


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
        level = logging.getLevelName(self.log_level) if isinstance(self.log_level, str) else self.log_level
        if isinstance(level, str):
            raise pytest.UsageError(
                f"@pytest.mark.prefect(log_level={self.log_level!r}) is not a logging level"
            )
        hooks = get(config, "prefect_hook_errors") if self.hook_errors is None else self.hook_errors
        block = get(config, "prefect_block_network") if self.block_network is None else self.block_network
        isolation = get(config, "prefect_isolation") if self.isolation is None else self.isolation
        return dataclasses.replace(
            self,
            fast_retries=bool(fast),
            timeout=timeout or None,
            log_level=level,
            hook_errors=_hook_errors(hooks),
            block_network=bool(block),
            isolation=_isolation(isolation),
        )


def _marker_signature() -> inspect.Signature:
    return inspect.signature(MarkerOptions)


def wants_skip_sleeps(item: pytest.Item) -> bool:
    """Whether the closest `prefect` marker that says `skip_sleeps=` says True."""
    for marker in item.iter_markers("prefect"):
        if "skip_sleeps" in marker.kwargs:
            return bool(marker.kwargs["skip_sleeps"])
    return False


def marker_options(item: pytest.Item) -> MarkerOptions:
    """Merge `prefect` markers: the closest (function, then class, then module) wins per keyword."""
    merged: dict[str, Any] = {}
    for marker in reversed(list(item.iter_markers("prefect"))):
        if marker.args:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.prefect takes keyword arguments only, got {marker.args!r}"
            )
        try:
            _marker_signature().bind(**marker.kwargs)
        except TypeError as exc:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.prefect{_marker_signature()}: {exc}"
            ) from None
        merged.update(marker.kwargs)
    return MarkerOptions(**merged).resolved(item.config)
