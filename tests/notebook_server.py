"""A real Jupyter server with the mlaas extension in a subprocess, and notebook runs
against it with nbclient (used by the tutorial and notebook end-to-end tests)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

__all__ = [
    "RunningServer",
    "error_outputs",
    "execute_notebook",
    "free_port",
    "jupyter_server",
    "server_process",
]


@dataclass(frozen=True)
class RunningServer:
    url: str
    token: str
    root: Path
    log: Path

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    @property
    def env(self) -> dict[str, str]:
        """What a kernel needs to find this server (see mlaas_jupyter.client)."""
        return {"MLAAS_SERVER_URL": self.url, "MLAAS_TOKEN": self.token}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server_process(
    command: list[str], env: dict[str, str], log: Path, ready: Callable[[], object], timeout: float
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (its own process group, output to ``log``) until ``ready()`` stops
    raising OSError; stop the whole group on exit."""
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                ready()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    failed = RuntimeError(f"{command[:3]} did not start:\n" + log.read_text())
                    raise failed from None
                time.sleep(0.3)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def jupyter_server(root: Path, state: Path, timeout: float = 90.0) -> Iterator[RunningServer]:
    """Run ``jupyter server`` on loopback with the extension, serving ``root``; the job
    store, run folders and caches live under ``state``."""
    port, token = free_port(), "notebook-test-token"
    state.mkdir(parents=True, exist_ok=True)
    log = state / "server.log"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "MLAAS_JOB_STORE": str(state / "jobs.sqlite"),
        "MLAAS_RUNS_DIR": str(state / "runs"),
        "MLAAS_CACHE_DIR": str(state / "cache"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
    }
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        f"--Mlaas.job_store={state / 'jobs.sqlite'}",
        f"--Mlaas.runs_dir={state / 'runs'}",
        f"--Mlaas.models_dir={state / 'models'}",
    ]
    server = RunningServer(f"http://127.0.0.1:{port}/", token, root, log)
    with server_process(command, env, log, lambda: server.get("mlaas/api/jobs?limit=1"), timeout):
        yield server


def error_outputs(notebook: Any) -> list[str]:
    """The error outputs and tracebacks printed to stderr, cell by cell."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("name") == "stderr" and "Traceback" in output.get("text", ""):
                found.append(f"cell {index}: traceback on stderr:\n{output['text']}")
    return found


def execute_notebook(
    path: Path, server: RunningServer, timeout: int = 600, save_to: Path | None = None
) -> Any:
    """Execute ``path`` (in its own folder) with a kernel that talks to ``server``;
    raises on the first failing cell, after saving the executed notebook to ``save_to``."""
    notebook = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.update(server.env)  # the kernel inherits the environment of this process
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if save_to is not None:
            nbformat.write(notebook, save_to)
    return notebook
