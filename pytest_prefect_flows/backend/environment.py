"""What isolates Prefect in a test process: environment variables, settings, the small CA file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.context import SettingsContext
    from prefect.settings import Settings

_SERVICES = (
    "CANCELLATION_CLEANUP",
    "EVENT_PERSISTER",
    "EVENT_LOGGER",
    "FOREMAN",
    "LATE_RUNS",
    "SCHEDULER",
    "PAUSE_EXPIRATIONS",
    "REPOSSESSOR",
    "CLEANUP_RECONCILER",
    "TASK_RUN_RECORDER",
    "TRIGGERS",
)

# Settings a user's environment may hold that would let a test reach a real server or profile.
_REMOVED_ENV = (
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_PROFILE",
    "PREFECT_API_DATABASE_CONNECTION_URL",
)


def isolation_env(home: Path, api_url: str, database: Path | None) -> dict[str, str | None]:
    """Environment that points Prefect at `home` and `api_url` only (`None` removes a variable)."""
    env: dict[str, str | None] = dict.fromkeys(_REMOVED_ENV)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
            "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
            # With registration off, the memoizing wrapper would still import every installed
            # integration (prefect-dask, prefect-aws, ...) at each server start, for nothing.
            "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
        }
    )
    ca_file = _small_ca_file(home)
    if ca_file is not None:
        env["PREFECT_API_SSL_CERT_FILE"] = str(ca_file)
    if database is not None:  # our own server
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{database}"
        # No CSRF on a loopback API of our own: the client would otherwise ask for a token (and get
        # a 422 "disabled") with every client it makes, i.e. every flow run.
        env["PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED"] = "false"
        env["PREFECT_CLIENT_CSRF_SUPPORT_ENABLED"] = "false"
    for service in _SERVICES:
        env[f"PREFECT_SERVER_SERVICES_{service}_ENABLED"] = "false"
    return env


def _small_ca_file(home: Path) -> Path | None:
    """A one-certificate CA file for the client's (unused) TLS context.

    Every flow run builds a client whose SSL context loads the whole certifi bundle (~25 ms),
    although the isolated API is plain HTTP on loopback. One certificate loads in microseconds.
    """
    try:
        import certifi
    except ImportError:
        return None
    bundle = Path(certifi.where()).read_text(encoding="ascii", errors="ignore")
    end = "-----END CERTIFICATE-----"
    if end not in bundle:
        return None
    start = bundle.index("-----BEGIN CERTIFICATE-----")
    path = home / "loopback-ca.pem"
    path.write_text(bundle[start : bundle.index(end) + len(end)] + "\n", encoding="ascii")
    return path


@contextlib.contextmanager
def patched_environ(updates: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for `None`, remove) environment variables and restore them afterwards."""
    saved = {name: os.environ.get(name) for name in updates}
    _apply_environ(updates)
    try:
        yield
    finally:
        _apply_environ(saved)


def _apply_environ(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def apply_to(env: dict[str, str], values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value


class SettingsScope:
    """Makes a Prefect `Settings` object current, in this context and process-wide."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context: SettingsContext | None = None
        self._previous_global: SettingsContext | None = None

    def enter(self) -> None:
        import prefect.context
        from prefect.context import SettingsContext

        profile = prefect.context.get_settings_context().profile
        self._context = SettingsContext(profile=profile, settings=self.settings)
        self._previous_global = prefect.context.GLOBAL_SETTINGS_CONTEXT
        prefect.context.GLOBAL_SETTINGS_CONTEXT = self._context
        self._context.__enter__()

    def exit(self) -> None:
        import prefect.context

        if self._context is None:
            return
        with contextlib.suppress(ValueError):  # token made in another context: nothing to reset
            self._context.__exit__(None, None, None)
        prefect.context.GLOBAL_SETTINGS_CONTEXT = self._previous_global  # type: ignore[assignment]
        self._context = None


def test_settings() -> Settings:
    """Settings built from the current (isolating) environment, with the flow heartbeat off."""
    from pytest_prefect_flows._compat import settings_without_flow_heartbeat

    return settings_without_flow_heartbeat()
