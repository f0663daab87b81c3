"""pytest wiring: options, markers, hooks and thin fixtures. The engine lives in the other modules.

Loading this module imports no Prefect: everything Prefect-related is imported inside hooks and
fixtures, and only once a test module has imported Prefect itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_prefect_flows import _options

_PACKAGE_DIR = Path(__file__).resolve().parent

if TYPE_CHECKING:
    from pytest_prefect_flows._import_hook import AfterImport
    from pytest_prefect_flows.backend import IsolatedBackend, RemoteBackend
    from pytest_prefect_flows.blocks import FakeBlocks
    from pytest_prefect_flows.clock import PrefectClock
    from pytest_prefect_flows.deployments.running import (
        Catalog,
        DeploymentPatch,
        DeploymentRunner,
        RunDeployment,
    )
    from pytest_prefect_flows.events import EventLog
    from pytest_prefect_flows.faults import FaultInjector
    from pytest_prefect_flows.http import PrefectHTTPRouter
    from pytest_prefect_flows.native_harness import HarnessReuse
    from pytest_prefect_flows.recording import RunLog
    from pytest_prefect_flows.runner import LogView, RunFlow
    from pytest_prefect_flows.snapshots import PrefectSnapshot
    from pytest_prefect_flows.sweep import FaultSweep, SweepReport

pytest.register_assert_rewrite("pytest_prefect_flows.assertions", "pytest_prefect_flows.events")

backend_key = pytest.StashKey["IsolatedBackend | RemoteBackend"]()
run_log_key = pytest.StashKey["RunLog"]()
options_key = pytest.StashKey["_options.MarkerOptions"]()
test_raised_key = pytest.StashKey[bool]()
backend_failed_before_key = pytest.StashKey[bool]()
harness_reuse_key: pytest.StashKey[HarnessReuse] = pytest.StashKey()
deployment_runner_key = pytest.StashKey["DeploymentRunner"]()
catalog_key: pytest.StashKey[Catalog] = pytest.StashKey()
sweep_reports_key: pytest.StashKey[list[SweepReport]] = pytest.StashKey()
# The test being set up or run while Prefect is not imported yet, and the hook that notices the import.
waiting_test_key = pytest.StashKey[pytest.Item]()
prefect_import_key: pytest.StashKey[AfterImport] = pytest.StashKey()
test_scope_key = pytest.StashKey[contextlib.ExitStack]()
scope_error_key = pytest.StashKey[Exception]()


def pytest_addoption(parser: pytest.Parser) -> None:
    _options.add_options(parser)


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser) -> None:
    """Before conftests import it: Prefect's `prefect_test_harness()` reuses the isolated backend.

    The parser is kept to tell the command line's own options from `addopts` (see coverage.selection).
    """
    from pytest_prefect_flows._native_harness_hooks import HarnessReuseHooks
    from pytest_prefect_flows.coverage.selection import parser_key
    from pytest_prefect_flows.native_harness import HarnessReuse

    early_config.stash[parser_key] = parser

    reuse = HarnessReuse(lambda: early_config.stash[backend_key]).__enter__()
    early_config.stash[harness_reuse_key] = reuse
    early_config.pluginmanager.register(HarnessReuseHooks(reuse), "prefect_flows_harness_reuse")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_prefect_flows.deployments import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


OWN_WARNINGS_FILTER = "default::pytest_prefect_flows.PrefectFlowsWarning"


def _keep_own_warnings_warnings(config: pytest.Config) -> None:
    """A suite that turns every warning into an error (`filterwarnings = error`, `-W error`) passes
    with the plugin as it did without: the plugin's own warnings stay warnings unless a filter names
    them (`error::pytest_prefect_flows.NetworkWarning` still makes one an error)."""
    ini: list[str] = config.getini("filterwarnings")
    cmdline: list[str] = config.known_args_namespace.pythonwarnings or []
    if any("pytest_prefect_flows" in line for line in [*ini, *cmdline]):
        return
    config.addinivalue_line("filterwarnings", OWN_WARNINGS_FILTER)
    if cmdline:  # pytest applies -W after the ini's filters
        config.known_args_namespace.pythonwarnings = [*cmdline, OWN_WARNINGS_FILTER]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _options.MARKER_HELP)
    from pytest_prefect_flows.backend import make_backend
    from pytest_prefect_flows.exceptions import BackendError, UsageError

    if not config.option.help:
        _options.check_all(config)
    _keep_own_warnings_warnings(config)
    try:
        backend = make_backend(_options.get(config, "prefect_backend"))
        backend.__enter__()
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    config.stash[backend_key] = backend
    from pytest_prefect_flows.backend import IsolatedBackend

    if isinstance(backend, IsolatedBackend):
        from pytest_prefect_flows.ready import BackendStart

        ahead = _options.get(config, "prefect_start") == "ahead"
        config.pluginmanager.register(BackendStart(config, backend, ahead), "prefect_flows_start")
    from pytest_prefect_flows.coverage.plugin import FlowCoveragePlugin

    config.pluginmanager.register(FlowCoveragePlugin(config), "prefect_flows_coverage")
    from pytest_prefect_flows.sweep.terminal import SweepSummary

    config.pluginmanager.register(SweepSummary(config), "prefect_flows_sweep")
    if _options.get(config, "prefect_check_deployments"):
        from pytest_prefect_flows.deployments.items import DeploymentGate

        config.pluginmanager.register(DeploymentGate(config), "prefect_flows_deployments")
    _register_baselines(config)
    if not _prefect_imported():
        from pytest_prefect_flows._import_hook import AfterImport

        config.stash[prefect_import_key] = AfterImport("prefect", lambda _: _prefect_now_imported(config))
        config.stash[prefect_import_key].__enter__()


def _prefect_now_imported(config: pytest.Config) -> None:
    """Prefect was imported during a test (in its body, a fixture, a module loaded by path): its
    runs are recorded from here on, as they are for a test module that imports Prefect at its top."""
    item = config.stash.get(waiting_test_key, None)
    if item is None:
        return
    try:
        _enter_scope(item)
    except Exception as exc:  # raised at the test's teardown: an import must not fail half-way
        item.stash[scope_error_key] = exc


def _register_baselines(config: pytest.Config) -> None:
    record, compare = config.getoption("prefect_record"), config.getoption("prefect_compare")
    if record or compare:
        from pytest_prefect_flows.snapshots.baseline import BaselinePlugin

        config.pluginmanager.register(BaselinePlugin(config, record, compare), "prefect_flows_baselines")


def pytest_unconfigure(config: pytest.Config) -> None:
    hook = config.stash.get(prefect_import_key, None)
    if hook is not None:
        hook.__exit__()
        del config.stash[prefect_import_key]
    reuse = config.stash.get(harness_reuse_key, None)
    if reuse is not None:
        reuse.__exit__()
        del config.stash[harness_reuse_key]
    backend = config.stash.get(backend_key, None)
    if backend is not None:
        backend.close()
        del config.stash[backend_key]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    guard = sys.modules.get("pytest_prefect_flows.guard")
    if guard is not None:  # a worker thread it left stuck does not change how the session ends
        guard.set_exit_status(int(session.exitstatus))


def pytest_report_header(config: pytest.Config) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        prefect = version("prefect")
    except PackageNotFoundError:
        prefect = "not installed"
    backend = config.stash.get(backend_key, None)
    when = (
        "prepared during collection, started on first flow run"
        if _options.get(config, "prefect_start") == "ahead"
        else "started on first flow run"
    )
    where = f"ephemeral (isolated, {when})"
    if backend is not None and backend.kind != "ephemeral":
        where = backend.api_url
    return f"prefect-flows: backend {where}, prefect {prefect}"


def _prefect_imported() -> bool:
    return "prefect" in sys.modules


@pytest.fixture(scope="session")
def prefect_harness(pytestconfig: pytest.Config) -> IsolatedBackend | RemoteBackend:
    """The session's isolated Prefect backend (`.api_url`, `.client()`, `.sync_client()`)."""
    backend = pytestconfig.stash[backend_key]
    backend.activate()
    return backend


@pytest.fixture(autouse=True)
def _prefect_flows_test_scope(request: pytest.FixtureRequest) -> Iterator[None]:
    """Per test, once Prefect is imported (before the test or during it): isolated settings, run
    recording, fast retries. A test that never imports Prefect gets nothing."""
    item = request.node
    item.stash[backend_failed_before_key] = _backend_failure(request.config) is not None
    item.stash[options_key] = _options.test_options(item)
    with contextlib.ExitStack() as scope:
        item.stash[test_scope_key] = scope
        if _prefect_imported():
            _enter_scope(item)
            yield
        else:
            request.config.stash[waiting_test_key] = item
            try:
                yield
            finally:
                del request.config.stash[waiting_test_key]
        error = item.stash.get(scope_error_key, None)
        if error is not None:
            raise error


def _enter_scope(item: pytest.Item) -> RunLog:
    """The test's run log, entering the test scope now if Prefect was imported by the test itself."""
    if run_log_key not in item.stash:
        from pytest_prefect_flows._failure_report import keep_run_logs_in_their_section, reported
        from pytest_prefect_flows.runner import test_scope

        keep_run_logs_in_their_section(item.config)
        scope = test_scope(item.config.stash[backend_key], item.stash[options_key], _test_name(item))
        stack = item.stash[test_scope_key]
        run_log = item.stash[run_log_key] = stack.enter_context(scope)
        stack.enter_context(reported(run_log))  # leaves before the scope does
        stack.callback(_warn_strays, item, run_log)
    return item.stash[run_log_key]


def _test_name(item: pytest.Item) -> str:
    return f"test {item.nodeid!r}"


def _warn_strays(item: pytest.Item, run_log: RunLog) -> None:
    from pytest_prefect_flows.exceptions import StrayRunWarning

    for started_by, runs in run_log.strays.items():
        shown = ", ".join(runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
        item.warn(
            StrayRunWarning(
                f"{len(runs)} flow run(s) were started by {started_by}: {shown}. They are not in this "
                "test's records (prefect_runs). Let the test that starts a thread join it before it ends."
            )
        )


@pytest.fixture
def prefect_runs(request: pytest.FixtureRequest, _prefect_flows_test_scope: None) -> RunLog:
    """Every flow run and task run this test started (`.flow_runs`, `.last`, `.task_runs`, `.find`)."""
    import prefect  # noqa: F401  (a test asking for its runs runs flows)

    return _ensure_scope(request)


@pytest.fixture
def run_flow(request: pytest.FixtureRequest, _prefect_flows_test_scope: None) -> RunFlow:
    """`run_flow(flow, *args, **kwargs) -> FlowRunRecord`; never raises for a failed flow."""
    import prefect  # noqa: F401  (a test asking for run_flow runs flows)

    from pytest_prefect_flows.runner import RunFlow

    return RunFlow(_ensure_scope(request))


def _ensure_scope(request: pytest.FixtureRequest) -> RunLog:
    return _enter_scope(request.node)


@pytest.fixture
def prefect_logs(request: pytest.FixtureRequest, _prefect_flows_test_scope: None) -> LogView:
    """Run-logger records of this test's runs (`.messages`, `.records`, `.for_run()`, `.at_level()`)."""
    import prefect  # noqa: F401

    from pytest_prefect_flows.runner import LogView

    return LogView(_ensure_scope(request))


@pytest.fixture
def fail_task(request: pytest.FixtureRequest, _prefect_flows_test_scope: None) -> Iterator[FaultInjector]:
    """Inject failures into tasks: `fail_task(name, times=N, exc=...)`, `.after(...)`, `.crash(...)`."""
    from pytest_prefect_flows.faults import FaultInjector

    _ensure_scope(request)
    options = request.node.stash[options_key]
    with FaultInjector(check_unused=options.check_unused_faults) as injector:
        yield injector
        if _test_raised(request):
            injector.check_unused = False
            injector.errors.clear()


@pytest.fixture
def fake_blocks(_prefect_flows_test_scope: None) -> Iterator[FakeBlocks]:
    """Fake Secrets, variables, blocks and notification sinks, removed after the test."""
    from pytest_prefect_flows.blocks import FakeBlocks

    with FakeBlocks() as blocks:
        yield blocks


@pytest.fixture
def prefect_clock(request: pytest.FixtureRequest, _prefect_flows_test_scope: None) -> Iterator[PrefectClock]:
    """Freeze and move time as flow code sees it (freezegun), without stalling the engine."""
    from pytest_prefect_flows.clock import PrefectClock

    _ensure_scope(request)
    # The backend imports its modules on start; started under a frozen clock they would bind fake datetimes.
    request.config.stash[backend_key].ensure_started()
    with PrefectClock() as clock:
        if request.node.stash[options_key].skip_sleeps:
            clock.skip_sleeps()
        yield clock


@pytest.fixture
def fault_sweep(request: pytest.FixtureRequest, _prefect_flows_test_scope: None) -> FaultSweep:
    """`fault_sweep(flow, *args, setup=..., observe=..., **kwargs) -> SweepReport`: one fault at every
    task run, then a clean rerun, compared with a clean run."""
    import prefect  # noqa: F401  (a sweep runs flows)

    from pytest_prefect_flows.sweep import FaultSweep

    _ensure_scope(request)
    return FaultSweep(on_report=request.node.stash.setdefault(sweep_reports_key, []).append)


@pytest.hookimpl(trylast=True)  # after -k and -m deselected what will not run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every `prefect` marker is checked before any test runs; `@pytest.mark.prefect(skip_sleeps=True)`
    needs the clock even if the test did not ask for it."""
    if items and not hasattr(items[0].config, "workerinput"):  # an xdist worker: fails each test instead
        _options.check_markers(items)
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is not None and "prefect_clock" not in names and _options.wants_skip_sleeps(item):
            names.append("prefect_clock")


@pytest.fixture
def prefect_events(request: pytest.FixtureRequest, _prefect_flows_test_scope: None) -> Iterator[EventLog]:
    """Events of this test's runs, recorded in memory (`.events`, `.named()`, `.for_run()`)."""
    import prefect  # noqa: F401  (a test asking for events runs flows)

    from pytest_prefect_flows.events import record_events

    _ensure_scope(request)
    with record_events(request.config.stash[backend_key]) as recorder:
        yield recorder.log


@pytest.fixture
def prefect_http(
    request: pytest.FixtureRequest, _prefect_flows_test_scope: None
) -> Iterator[PrefectHTTPRouter]:
    """A respx router for the flow's outbound HTTP; the backend's own API traffic passes through."""
    from pytest_prefect_flows.http import mock_http

    _ensure_scope(request)
    options = request.node.stash[options_key]
    with mock_http(assert_all_called=options.assert_all_called) as router:
        yield router
        if _test_raised(request):
            router.skip_assert_all_called()


def _test_raised(request: pytest.FixtureRequest) -> bool:
    """The test already failed (or was skipped): end-of-test checks would report a second problem."""
    raised: bool = request.node.stash.get(test_raised_key, False)
    return raised


@pytest.fixture
def prefect_snapshot(request: pytest.FixtureRequest) -> PrefectSnapshot:
    """syrupy's `snapshot` using `PrefectRunSnapshot`: `assert run == prefect_snapshot`."""
    from pytest_prefect_flows.snapshots import require_syrupy

    require_syrupy(request.config)
    from pytest_prefect_flows.snapshots.extension import PrefectRunSnapshot

    snapshot: PrefectSnapshot = request.getfixturevalue("snapshot").use_extension(PrefectRunSnapshot)
    return snapshot


@pytest.fixture
def prefect_run_deployment(request: pytest.FixtureRequest, _prefect_flows_test_scope: None) -> RunDeployment:
    """`prefect_run_deployment("flow-name/deployment-name", parameters=None) -> FlowRunRecord`, in-process."""
    from pytest_prefect_flows.deployments.running import RunDeployment

    return RunDeployment(_deployment_runner(request))


@pytest.fixture
def run_deployment(request: pytest.FixtureRequest, prefect_run_deployment: RunDeployment) -> RunDeployment:
    """Deprecated alias of `prefect_run_deployment` (removed in 0.3)."""
    from pytest_prefect_flows.exceptions import PrefectFlowsDeprecationWarning

    request.node.warn(
        PrefectFlowsDeprecationWarning(
            "The run_deployment fixture is now prefect_run_deployment: a fixture named run_deployment "
            "hides Prefect's own prefect.deployments.run_deployment from the test function. Request "
            "prefect_run_deployment instead (the same object); run_deployment goes in 0.3."
        )
    )
    return prefect_run_deployment


@pytest.fixture
def prefect_deployments(
    request: pytest.FixtureRequest, _prefect_flows_test_scope: None
) -> Iterator[DeploymentPatch]:
    """Flow code's `run_deployment(...)` runs the deployment here; `.stub(name, state=...)`, `.calls`."""
    from pytest_prefect_flows.deployments.running import DeploymentPatch

    with DeploymentPatch(_deployment_runner(request)) as patch:
        yield patch


def _deployment_runner(request: pytest.FixtureRequest) -> DeploymentRunner:
    import prefect  # noqa: F401  (running deployments runs flows)

    from pytest_prefect_flows.deployments.running import Catalog, DeploymentRunner

    if catalog_key not in request.config.stash:  # the prefect.yaml files, read once per session
        request.config.stash[catalog_key] = Catalog(request.config.rootpath)
    if deployment_runner_key not in request.node.stash:
        catalog = request.config.stash[catalog_key]
        request.node.stash[deployment_runner_key] = DeploymentRunner(catalog, _ensure_scope(request))
    runner: DeploymentRunner = request.node.stash[deployment_runner_key]
    return runner


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Outermost: once the test's reports are made (and flow coverage, baselines and snapshots took
    the compact data they keep), its run records go, with the results and logs they hold."""
    try:
        return (yield)
    finally:
        _drop(item.stash, run_log_key)
        _drop(item.stash, deployment_runner_key)


def _drop(stash: pytest.Stash, key: pytest.StashKey[Any]) -> None:
    if key in stash:
        del stash[key]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A flow run stopped by the hang guard fails the test with `FlowRunTimeoutError` (a raising
    `when=` of `fail_task` with its `UsageError`); a pytest
    outcome raised in a run that Prefect kept to itself is the test's; state hooks that raised are
    reported per `prefect_hook_errors`."""
    run_log = item.stash.get(run_log_key, None)
    try:
        result = yield
        if run_log is not None:
            from pytest_prefect_flows.runner import raise_outcome

            raise_outcome(run_log)
    except BaseException as exc:
        if run_log is not None:
            run_log.take_outcome()
        _check_hook_errors(item, test_failed=True)
        from pytest_prefect_flows.exceptions import InterruptTest

        if isinstance(exc, InterruptTest):
            raise exc.as_error() from exc
        raise
    _check_hook_errors(item, test_failed=False)
    return result


def _backend_failure(config: pytest.Config) -> str | None:
    """Why the backend failed and will not serve (its `BackendError`), or None."""
    from pytest_prefect_flows.exceptions import BackendError

    backend = config.stash.get(backend_key, None)
    try:
        if backend is not None:
            backend.check()
    except BackendError as exc:
        return str(exc)
    return None


def _report_backend_failure(
    item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException], report: Any
) -> None:
    """A backend that failed to start (or gave up) during the test is the test's error, whatever
    the client then raised ("Failed to reach API ... Connection refused"); shown without our frames."""
    from pytest_prefect_flows.exceptions import BackendError

    if not report.failed:
        return
    failure = _backend_failure(item.config)
    if isinstance(excinfo.value, BackendError):
        report.longrepr = f"BackendError: {excinfo.value}"
    elif failure is not None and not item.stash.get(backend_failed_before_key, True):
        report.longrepr = (
            f"BackendError: {failure}\n(the test then raised {excinfo.exconly().splitlines()[0]})"
        )


def _without_our_frames(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException] | None) -> bool:
    """An error the plugin raised on purpose (`UsageError`, `UnusedFaultError`, ...) is reported from
    the user's frames: the plugin's own are left out, as pytest leaves out its own (`--fulltrace`
    shows them). Returns False when no frame of the user's is left (raised at a fixture's teardown, say)."""
    if (
        excinfo is None
        or not isinstance(item, pytest.Function)  # other items report their own way
        or not _is_deliberate(excinfo)
        or item.config.getoption("fulltrace", False)
    ):
        return True
    try:
        from _pytest._code.code import filter_traceback
    except ImportError:  # a pytest that moved it: the report keeps every frame
        return True
    package = str(_PACKAGE_DIR) + os.sep
    users = False
    for entry in excinfo.traceback:
        if str(entry.path).startswith(package):
            # pytest hides a frame whose module says so; ours say so for these errors only
            entry.frame.f_globals.setdefault("__tracebackhide__", _is_deliberate)
        elif filter_traceback(entry):  # not pytest's nor pluggy's
            users = True
    return users


def _is_deliberate(excinfo: pytest.ExceptionInfo[BaseException] | None) -> bool:
    """An error the plugin raised with a full message, not a bug and not a hang (the hang guard's
    `FlowRunTimeoutError` shows where the run was stuck)."""
    from pytest_prefect_flows.exceptions import FlowRunTimeoutError, PrefectFlowsError

    value = None if excinfo is None else excinfo.value
    return isinstance(value, PrefectFlowsError) and not isinstance(value, FlowRunTimeoutError)


def _check_hook_errors(item: pytest.Item, test_failed: bool) -> None:
    __tracebackhide__ = True
    run_log = item.stash.get(run_log_key, None)
    if run_log is None:
        return
    from pytest_prefect_flows.hooks import check_hook_errors

    warning = check_hook_errors(run_log, str(item.stash[options_key].hook_errors), test_failed=test_failed)
    if warning is not None:
        item.warn(warning)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    users_frames = _without_our_frames(item, call.excinfo)
    report = yield
    from pytest_prefect_flows.exceptions import HookError

    if call.excinfo is not None and (call.excinfo.errisinstance(HookError) or not users_frames):
        # the hooks' errors, or an error raised with no frame of the user's: the message, not our frames
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
    if call.when in ("setup", "call") and call.excinfo is not None:
        item.stash[test_raised_key] = True
        _report_backend_failure(item, call.excinfo, report)
    run_log = item.stash.get(run_log_key, None)
    if run_log is not None and (report.failed or call.when == "call"):
        # the one copy of the run logs: pytest's captured log and stderr leave them out
        from pytest_prefect_flows._failure_report import RUN_LOGS_SECTION, format_logs

        text = format_logs(run_log, verbose=item.config.get_verbosity() > 0)
        if text:
            report.sections.append((RUN_LOGS_SECTION, text))
    if call.when == "call" and item.stash.get(sweep_reports_key, None):
        from pytest_prefect_flows.sweep.terminal import add_section

        add_section(report, item.stash[sweep_reports_key])
    return report
