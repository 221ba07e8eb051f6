"""A real ``dask-gateway-server`` on loopback (its local backend: schedulers and
workers are processes of this machine), started once per session and stopped after.

Clusters of the gateway are per user; the tests read them back through the gateway's
own API (:meth:`GatewayServer.clusters`) to check that work really went through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: what the gateway's schedulers and workers inherit from this process
INHERITED = [
    "PATH",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "LANG",
    "LC_ALL",
    "MLAAS_CACHE_DIR",
    "TF_CPP_MIN_LOG_LEVEL",
    "TF_ENABLE_ONEDNN_OPTS",
    "MALLOC_ARENA_MAX",
    "OMP_NUM_THREADS",
]


@dataclass
class GatewayServer:
    """A running gateway: where it listens, its password and its log."""

    address: str
    proxy_address: str
    password: str
    log: Path

    def spec(self, **gateway: Any) -> dict[str, Any]:
        """A ``cluster:`` mapping of this gateway (basic auth; the user and password
        come from the environment unless given)."""
        given = {"address": self.address, "proxy_address": self.proxy_address, "auth": "basic"}
        return {"gateway": {**given, "workers": 1, **gateway}, "timeout": 60}

    def log_count(self, text: str) -> int:
        """How many lines of the gateway's log contain ``text``."""
        return sum(text in line for line in self.log.read_text(errors="replace").splitlines())

    def clusters(
        self, user: str, status: str | tuple[str, ...] = ("stopping", "stopped")
    ) -> list[str]:
        """The names of ``user``'s clusters in ``status`` (default: those shut down,
        or shutting down), asked of the gateway itself."""
        from dask_gateway import Gateway
        from dask_gateway.auth import BasicAuth

        async def names() -> list[str]:
            auth = BasicAuth(user, self.password)
            async with Gateway(
                self.address, proxy_address=self.proxy_address, auth=auth, asynchronous=True
            ) as gateway:
                reports = await gateway.list_clusters(
                    status=list(status) if not isinstance(status, str) else status
                )
                return sorted(report.name for report in reports)

        return asyncio.run(names())


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="session")
def gateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """``dask-gateway-server`` (UnsafeLocalBackend: no user switching; SimpleAuthenticator
    with one password for every user) on free loopback ports; its process group is
    killed at the end of the session."""
    pytest.importorskip("dask_gateway_server")
    folder = tmp_path_factory.mktemp("gateway")
    api, http, tcp = _free_ports(3)
    password = secrets.token_hex(8)
    python = sys.executable
    (folder / "config.py").write_text(
        textwrap.dedent(
            f"""
            c.DaskGateway.address = "127.0.0.1:{api}"
            c.Proxy.address = "127.0.0.1:{http}"
            c.Proxy.tcp_address = "127.0.0.1:{tcp}"
            c.DaskGateway.backend_class = (
                "dask_gateway_server.backends.local.UnsafeLocalBackend"
            )
            c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
            c.SimpleAuthenticator.password = {password!r}
            c.LocalBackend.clusters_directory = {str(folder / "clusters")!r}
            c.LocalBackend.inherited_environment = {INHERITED!r}
            c.ClusterConfig.scheduler_cmd = [{python!r}, "-m", "distributed.cli.dask_scheduler"]
            c.ClusterConfig.worker_cmd = [{python!r}, "-m", "distributed.cli.dask_worker"]
            c.ClusterConfig.worker_cores = 1
            c.ClusterConfig.worker_threads = 1
            c.ClusterConfig.worker_memory = "4 G"
            c.ClusterConfig.scheduler_memory = "1 G"
            """
        )
    )
    (folder / "clusters").mkdir()
    env = {
        **os.environ,
        "MLAAS_CACHE_DIR": str(folder / "cache"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "MALLOC_ARENA_MAX": "2",
        "OMP_NUM_THREADS": "1",
    }
    log = folder / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [python, "-m", "dask_gateway_server", "-f", str(folder / "config.py")],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed at the end
        )
    server = GatewayServer(f"http://127.0.0.1:{http}", f"gateway://127.0.0.1:{tcp}", password, log)
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{server.address}/api/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dask-gateway-server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM first (the gateway stops its clusters), then SIGKILL to the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
