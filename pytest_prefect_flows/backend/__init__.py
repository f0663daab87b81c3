"""The backends flows run against during tests, one module per concern.

- `isolated`: `IsolatedBackend`, a private Prefect API served from a thread of this process;
- `server`: the pieces of that API server (the ASGI write counter, the shutdown log filter);
- `template`: the template database, one per Prefect version, cached; `shipped`: the ready-made
  templates the package ships for the Prefect releases it is tested with;
- `environment`: the environment variables and settings that isolate Prefect;
- `cleanup`: per-test removal of what a test saved, and the cached default-storage lookup;
- `tempdirs`: the session's temporary directories and the removal of stale ones;
- `base`: what both backends share; `remote`: `RemoteBackend`, an existing Prefect server.

Importing this package imports no Prefect: each backend imports it when it is entered.
"""

from __future__ import annotations

from typing import Any

from pytest_prefect_flows.backend.base import Backend
from pytest_prefect_flows.backend.environment import isolation_env, patched_environ, test_settings
from pytest_prefect_flows.backend.isolated import MAX_RESTARTS, IsolatedBackend
from pytest_prefect_flows.backend.remote import RemoteBackend, normalise_api_url, parse_backend
from pytest_prefect_flows.backend.tempdirs import TEMP_PREFIX, remove_stale_temp_dirs
from pytest_prefect_flows.backend.template import default_template_dir, template_database

__all__ = [
    "MAX_RESTARTS",
    "TEMP_PREFIX",
    "Backend",
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


def make_backend(value: str, **kwargs: Any) -> IsolatedBackend | RemoteBackend:
    """The backend a `prefect_backend` value names (`ephemeral` or `server:<URL>`)."""
    kind, url = parse_backend(value)
    if kind == "server":
        assert url is not None
        return RemoteBackend(url, base_dir=kwargs.get("base_dir"))
    return IsolatedBackend(**kwargs)
