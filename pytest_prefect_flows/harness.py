"""The isolated Prefect backend, under its first-round name: see `pytest_prefect_flows.backend`.

Kept so that imports of `pytest_prefect_flows.harness` keep working; new code imports from
`pytest_prefect_flows.backend`.
"""

from __future__ import annotations

from pytest_prefect_flows.backend import (
    MAX_RESTARTS,
    TEMP_PREFIX,
    IsolatedBackend,
    RemoteBackend,
    default_template_dir,
    isolation_env,
    make_backend,
    normalise_api_url,
    parse_backend,
    patched_environ,
    remove_stale_temp_dirs,
    template_database,
    test_settings,
)

__all__ = [
    "MAX_RESTARTS",
    "TEMP_PREFIX",
    "IsolatedBackend",
    "RemoteBackend",
    "default_template_dir",
    "isolation_env",
    "make_backend",
    "normalise_api_url",
    "parse_backend",
    "patched_environ",
    "remove_stale_temp_dirs",
    "template_database",
    "test_settings",
]
