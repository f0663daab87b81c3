"""Exception and warning classes raised by pytest-prefect-flows.

Every error names what the user passed and what to do instead.
"""

from __future__ import annotations


class PrefectFlowsError(Exception):
    """Base class of every error raised by pytest-prefect-flows."""


class UsageError(PrefectFlowsError, ValueError):
    """The caller passed something the plugin cannot use (wrong type, unknown name, bad value)."""


class BackendError(PrefectFlowsError, RuntimeError):
    """The isolated backend could not start, died, or a `server:` backend does not answer."""


class UnknownTaskError(UsageError, LookupError):
    """A task name was asked for that the run (or the flow paths) does not contain."""


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


class PrefectFlowsWarning(UserWarning):
    """Base class of every warning issued by pytest-prefect-flows."""


class PrefectFlowsDeprecationWarning(PrefectFlowsWarning, DeprecationWarning):
    """A name of pytest-prefect-flows that goes away in a later release; the message names its successor."""


class UnusedFaultWarning(PrefectFlowsWarning):
    """A failure was injected for a task that never ran."""


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
