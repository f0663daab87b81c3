"""An existing Prefect server as the backend (`prefect_backend = server:<URL>`)."""

from __future__ import annotations

from pathlib import Path

from pytest_prefect_flows.backend.base import Backend
from pytest_prefect_flows.exceptions import BackendError, UsageError


class RemoteBackend(Backend):
    """Runs flows against an existing Prefect server (`prefect_backend = server:<URL>`).

    Home and profile are still temporary; every run is tagged `pytest-prefect-flows:<session id>`
    (see `session_tag`) so tests only look at their own runs.
    """

    kind = "server"

    def __init__(self, url: str, *, base_dir: Path | None = None, timeout: float = 5.0) -> None:
        super().__init__(base_dir)
        self.api_url = normalise_api_url(url)
        self._timeout = timeout

    @property
    def session_tag(self) -> str:
        return f"pytest-prefect-flows:{self.session_id}"

    def __enter__(self) -> RemoteBackend:
        self.check_reachable()
        self._make_home()
        self._enter_environment()
        return self

    def check_reachable(self) -> None:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=self._timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BackendError(
                f"prefect_backend = server:{self.api_url} does not answer ({exc}). Start the server "
                "(`prefect server start`) or use the default `prefect_backend = ephemeral`."
            ) from None

    def close(self) -> None:
        self.flush_logs()
        super().close()

    def __repr__(self) -> str:
        return f"<RemoteBackend {self.api_url} tag={self.session_tag}>"


def normalise_api_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(
            f"prefect_backend = server:{url!r} is not an http(s) URL; "
            "write e.g. `server:http://127.0.0.1:4200/api`."
        )
    return url if url.endswith("/api") else f"{url}/api"


def parse_backend(value: str) -> tuple[str, str | None]:
    """Validate a `prefect_backend` value: `ephemeral` or `server:<URL>`."""
    value = value.strip()
    if value == "ephemeral":
        return "ephemeral", None
    if value.startswith("server:"):
        return "server", normalise_api_url(value[len("server:") :])
    raise UsageError(
        f"prefect_backend = {value!r} is not a backend. Use `ephemeral` (default: an isolated "
        "local backend) or `server:<URL>` (an existing Prefect server, e.g. server:http://127.0.0.1:4200/api)."
    )
