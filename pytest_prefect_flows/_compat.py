"""Every place where the plugin depends on how a particular Prefect version works.

The rest of the package calls these shims and never compares Prefect versions itself. Each shim
names the versions it serves and when it can go, so supporting a new Prefect release is a change to
this file alone (checked by `nox -s "tests(prefect='3.X')"`, see docs/supported-versions.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.settings import Settings


def prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


def settings_without_flow_heartbeat() -> Settings:
    """Settings from the current environment, with the flow-run heartbeat thread off.

    Prefect 3.5+: the heartbeat (joined for up to a second at the end of every flow) cannot be
    switched off through the environment, so it is set on the object. Prefect 3.4 has no flow
    heartbeat setting: nothing to switch off.
    """
    import prefect.settings
    from prefect.settings import Settings

    heartbeat: Any = getattr(prefect.settings, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)
    if heartbeat is None:
        return Settings()
    return Settings().copy_with_update(updates={heartbeat: None})
