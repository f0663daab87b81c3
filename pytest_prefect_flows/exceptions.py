"""Exception and warning classes raised by pytest-prefect-flows.

Every error names what the user passed and what to do instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# pytest marks its UsageError final for type checkers only. Subclassing it is what makes one usage
# error type: raised while pytest reads the options or collects the tests, ours ends the session
# with exit code 4 and its message alone, as pytest's own does.
if TYPE_CHECKING:

    class _PytestUsageError(Exception):
        """`pytest.UsageError`, without its `@final`."""

else:
    import pytest

    _PytestUsageError = pytest.UsageError


class PrefectFlowsError(Exception):
    """Base class of every error raised by pytest-prefect-flows."""


class UsageError(PrefectFlowsError, _PytestUsageError, ValueError):
    """The caller passed something the plugin cannot use (wrong type, unknown name, bad value).

    The one usage error of the package, and a `pytest.UsageError`.
    """


class BackendError(PrefectFlowsError, RuntimeError):
    """The isolated backend could not start, died, or a `server:` backend does not answer."""


class UnknownTaskError(UsageError, LookupError):
    """A task name was asked for that the run (or the flow paths) does not contain."""


class AmbiguousTaskError(UnknownTaskError):
    """A task name (or `where=`) that picks more than one run where one run is needed, e.g.
    `run.task("fetch")` on a mapped task; the message lists the runs and how to pick one.

    A subclass of `UnknownTaskError`, which it used to be raised as, so `except UnknownTaskError` still
    catches it.
    """


class UnknownBlockError(UsageError, LookupError):
    """A block, secret or variable name was loaded that no test registered."""


class MissingExtraError(UsageError, ImportError):
    """A feature needs an optional dependency that is not installed (or its plugin is disabled)."""


class FlowRunTimeoutError(PrefectFlowsError, TimeoutError):
    """A flow run exceeded the hang guard's timeout."""


class UnusedFaultError(PrefectFlowsError, AssertionError):
    """A fault injected with `fail_task` never fired (misspelt task name, or the task never ran)."""


class UnusedRouteError(PrefectFlowsError, AssertionError):
    """A `prefect_http` route was never called."""


class UnmockedRequestError(PrefectFlowsError, AssertionError):
    """A flow or task sent an HTTP request that no `prefect_http` route matches.

    A missing route is a mistake in the test, not an outage: Prefect does not retry a task that
    failed with it.
    """


class InjectedFault(Exception):
    """Raised inside a task by `fail_task(...)` / `fail_task.after(...)` when no `exc=` was given."""


class InjectedCrash(BaseException):
    """Raised inside a task by `fail_task.crash(...)`.

    A `BaseException`, like the signal that kills a worker process, so Prefect marks the task run and
    its flow run `Crashed` instead of retrying. `run_flow` returns the crashed run's record; a flow
    called directly lets it propagate.
    """


class IdempotencyError(PrefectFlowsError, AssertionError):
    """A flow or task is not idempotent or not retry-safe; `.problems` holds one line per finding."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class FaultSweepError(IdempotencyError):
    """A fault sweep found points where the flow did not recover (`SweepReport.assert_recovered()`)."""


class InterruptTest(BaseException):
    """Raised inside a run to end the test, not only the run (the hang guard's interrupt, a raising
    `when=` of `fail_task`): a `BaseException`, so retries and `except Exception` in flow code do not
    swallow it and Prefect marks the run `Crashed`. Where the test sees it, `as_error()` is raised."""

    def as_error(self) -> Exception:
        raise NotImplementedError


class PrefectFlowsWarning(UserWarning):
    """Base class of every warning issued by pytest-prefect-flows."""


class PrefectFlowsDeprecationWarning(PrefectFlowsWarning, DeprecationWarning):
    """A name of pytest-prefect-flows that goes away in a later release; the message names its successor."""


class UnusedFaultWarning(PrefectFlowsWarning):
    """A failure was injected for a task that never ran."""


class StrayRunWarning(PrefectFlowsWarning):
    """A flow run was started by a thread an earlier test left running; it is not in this test's records."""


class AbandonedThreadWarning(PrefectFlowsWarning):
    """A worker thread still busy when its flow run was interrupted was left running, not waited for."""


class DeploymentCheckError(PrefectFlowsError, AssertionError):
    """A deployment would not deploy or run as declared; `.problems` holds one line per finding."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class UnknownDeploymentError(UsageError, LookupError):
    """`prefect_run_deployment`/`prefect_deployments` got a name that no `prefect.yaml` deployment has."""


class UnusedStubError(PrefectFlowsError, AssertionError):
    """A deployment stubbed with `prefect_deployments.stub(...)` was never called (misspelt name?)."""


class HookErrorWarning(PrefectFlowsWarning):
    """A state hook (`on_completion`, `on_failure`, ...) raised; Prefect only logged it."""


class HookError(PrefectFlowsError, AssertionError):
    """A state hook raised (`prefect_hook_errors = fail`, or `assert_no_hook_errors(run)`)."""


class NetworkBlockedError(PrefectFlowsError, RuntimeError):
    """Flow or task code opened a non-loopback connection while `prefect_block_network` is on.

    Not an `OSError`, so HTTP clients pass it through instead of wrapping it as a connection error.
    """


class NetworkWarning(PrefectFlowsWarning):
    """Flow or task code opened a non-loopback connection (`prefect_block_network` is off)."""
