"""Network guard: flow and task code that opens a non-loopback connection.

A flow test that forgot `prefect_http` reaches the real internet (DNS lookups first, once per
attempt across retries). `network_guard(block=...)` watches the two doors every client goes
through, `socket.getaddrinfo` (name lookups) and `socket.socket.connect`/`connect_ex` of TCP
sockets (a UDP "connect" sends nothing), and acts only for code running inside a flow or task run
(the test's own code and the engine outside runs are not concerned):

* loopback hosts (`localhost`, `127.0.0.0/8`, `::1`), Unix sockets and `allowed` hosts (a
  `server:` backend's) pass;
* with `block=False` (the default of `prefect_block_network`) the connection goes ahead and a
  `NetworkWarning` naming each host is issued when the block ends;
* with `block=True` the lookup or connection raises `NetworkBlockedError` naming the host and
  what is missing (a `prefect_http` route for it), before any packet leaves the machine.

`prefect_http` answers httpx and `requests` before any socket is opened: their requests never get
here. A connection made while it is active came from another client, and the advice says so.

Works without pytest::

    with network_guard(block=True):
        my_flow()   # a task calling https://api.example.com fails with NetworkBlockedError
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pytest_prefect_flows._context import current_run_name, in_flow_or_task_run
from pytest_prefect_flows._patching import AttributePatches
from pytest_prefect_flows.exceptions import NetworkBlockedError, NetworkWarning

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def advice(hosts: list[str], http_mocked: bool) -> str:
    """What is missing for connections to `hosts`: routes, or (with `prefect_http` active, which
    never saw those requests) a fake of a client it does not serve."""
    names = ", ".join(hosts)
    if http_mocked:
        return (
            f"prefect_http is active but never saw the requests to {names}: their client is neither "
            "httpx nor requests (urllib, aiohttp, a database or cloud SDK, ...). Fake that client instead."
        )
    return (
        f"Missing: a prefect_http route for each URL requested from {names}, e.g. "
        f'prefect_http.get("https://{hosts[0]}/...").respond(json=...) (prefect_http serves httpx and '
        "requests), or a fake of the client."
    )


def _http_mocked() -> bool:
    """Whether a `prefect_http` router is active (never imports it)."""
    router = sys.modules.get("pytest_prefect_flows.http._router")
    return router is not None and router.http_mocked()


def is_loopback(host: Any) -> bool:
    """Whether `host` (a name or an address, str or bytes) stays on this machine."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Watches lookups and connections made by flow and task code while active."""

    def __init__(self, *, block: bool, allowed: Iterable[str] = ()) -> None:
        self.block = block
        self.allowed = {host.lower() for host in allowed}
        self.attempts: list[tuple[str, str]] = []  # (host:port, where) in order, each host once
        self._while_mocked: set[str] = set()  # of those, the ones made while prefect_http was active
        self._lock = threading.Lock()
        self._patches = AttributePatches()  # `socket.socket.connect` is inherited: deleted again

    def start(self) -> None:
        self._patch(socket, "getaddrinfo", self._wrap_getaddrinfo)
        self._patch(socket.socket, "connect", self._wrap_connect)
        self._patch(socket.socket, "connect_ex", self._wrap_connect)

    def stop(self) -> None:
        self._patches.restore()

    def _patch(self, owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        self._patches.replace(owner, name, wrap(getattr(owner, name)))

    def check(self, host: Any, port: Any) -> None:
        """Let a lookup or connection to `host` go ahead, record it, or refuse it."""
        __tracebackhide__ = True
        if host is None or is_loopback(host) or not in_flow_or_task_run():
            return
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.lower() in self.allowed:
            return
        target = f"{name}:{port}" if port not in (None, 0, "") else name
        where = current_run_name() or "a flow run"
        mocked = _http_mocked()
        with self._lock:
            if all(name != seen.rsplit(":", 1)[0] for seen, _ in self.attempts):
                self.attempts.append((target, where))
                if mocked:
                    self._while_mocked.add(target)
        if self.block:
            raise NetworkBlockedError(
                f"{where} tried to connect to {target}: pytest-prefect-flows refuses non-loopback "
                f"connections from flow and task code (prefect_block_network = true). "
                f"{advice([name], mocked)}"
            )

    def _wrap_getaddrinfo(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            self.check(host, port)
            return original(host, port, *args, **kwargs)

        return getaddrinfo

    def _wrap_connect(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def connect(sock: socket.socket, address: Any) -> Any:
            # Only TCP: connecting a UDP socket sends nothing (Dask and others use it to find the
            # machine's own address, "connecting" to 8.8.8.8).
            if (
                sock.family in (socket.AF_INET, socket.AF_INET6)
                and sock.type == socket.SOCK_STREAM
                and isinstance(address, tuple)
            ):
                self.check(address[0], address[1])
            return original(sock, address)

        return connect

    def warning(self) -> NetworkWarning | None:
        """What to tell the test when it did not block: each host flow code reached, once."""
        if self.block or not self.attempts:
            return None
        listing = "\n".join(f"  {target} (from {where})" for target, where in self.attempts)
        hints = []
        for mocked in (False, True):
            hosts = [
                target.rsplit(":", 1)[0]
                for target, _ in self.attempts
                if (target in self._while_mocked) is mocked
            ]
            if hosts:
                hints.append(advice(hosts, mocked))
        return NetworkWarning(
            f"Flow or task code connected to {len(self.attempts)} non-loopback host(s):\n{listing}\n"
            f"{' '.join(hints)} Set prefect_block_network = true (or --prefect-block-network) to refuse them."
        )


@contextlib.contextmanager
def network_guard(*, block: bool, allowed: Iterable[str] = ()) -> Iterator[NetworkGuard]:
    """Watch (warn about) or refuse non-loopback connections from flow and task code in the block."""
    guard = NetworkGuard(block=block, allowed=allowed)
    guard.start()
    try:
        yield guard
    finally:
        guard.stop()
    warning = guard.warning()
    if warning is not None:
        warnings.warn(warning, stacklevel=3)
