"""A real Jupyter Kernel Gateway (``jupyter kernelgateway``) on loopback, for the
remote-kernel tests: started in its own process group, torn down with it."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notebook_server import free_port, server_process

__all__ = ["KernelGateway", "gateway_command", "kernel_gateway"]

#: what the gateway's kernels inherit from its process (a gateway passes kernels only
#: PATH and these): a cache folder and a HOME of the test's, quiet TensorFlow
KERNEL_ENV = (
    "HOME",
    "MLAAS_CACHE_DIR",
    "MPLCONFIGDIR",
    "TF_CPP_MIN_LOG_LEVEL",
    "TF_ENABLE_ONEDNN_OPTS",
    "MALLOC_ARENA_MAX",
)


@dataclass(frozen=True)
class KernelGateway:
    """A running gateway: its URL, token, process id and log."""

    url: str
    token: str
    pid: int
    log: Path

    def get(self, path: str) -> Any:
        """``GET {url}/{path}`` with the token; the decoded JSON reply."""
        request = urllib.request.Request(
            f"{self.url}/{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def kernel_ids(self) -> list[str]:
        """The ids of the kernels running on the gateway."""
        return [kernel["id"] for kernel in self.get("api/kernels")]


def gateway_command(port: int, token: str) -> list[str]:
    """``jupyter kernelgateway`` on 127.0.0.1:``port``, with a token, kernel listing on
    (the server's kernel manager and these tests list them) and the kernels' env."""
    return [
        sys.executable,
        "-m",
        "kernel_gateway",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.port_retries=0",
        f"--KernelGatewayApp.auth_token={token}",
        "--JupyterWebsocketPersonality.list_kernels=True",
        *(f"--KernelGatewayApp.env_process_whitelist={name}" for name in KERNEL_ENV),
    ]


@contextmanager
def kernel_gateway(root: Path, state: Path, timeout: float = 60.0) -> Iterator[KernelGateway]:
    """Run a Kernel Gateway whose kernels start in ``root`` (its working directory: the
    data folder); its runtime files, log, cache and HOME live under ``state``."""
    port, token = free_port(), "kernel-gateway-test-token"
    for folder in ("runtime", "home", "cache", "mpl"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "HOME": str(state / "home"),
        "MLAAS_CACHE_DIR": str(state / "cache"),
        "MPLCONFIGDIR": str(state / "mpl"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "MALLOC_ARENA_MAX": "2",
    }
    # kernels start where the gateway runs: in the data folder
    command = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(root), *gateway_command(port, token)]
    url = f"http://127.0.0.1:{port}"
    log = state / "gateway.log"
    probe = KernelGateway(url, token, 0, log)
    with server_process(command, env, log, lambda: probe.get("api"), timeout) as process:
        yield KernelGateway(url, token, process.pid, log)
