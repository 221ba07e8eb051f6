"""``mlaas serve`` in a subprocess for the tests, and a way to call it over HTTP."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

API = "/mlaas/api/"
REPO = Path(__file__).resolve().parents[2]


def isolated_env(home: Path) -> dict[str, str]:
    """The environment of a server whose config, runtime files, job store and runs are
    under ``home`` (no user config, no token from the environment)."""
    env = {k: v for k, v in os.environ.items() if k != "MLAAS_TOKEN"}
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        MLAAS_JOB_STORE=str(home / "jobs.sqlite"),
        MLAAS_RUNS_DIR=str(home / "runs"),
        MLAAS_CACHE_DIR=str(home / "cache"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


@dataclass
class Server:
    """A running ``mlaas serve`` and a way to call it."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    root: Path
    models: Path
    printed: list[str]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = "",
    ) -> tuple[int, dict[str, str], Any]:
        """(status, headers, JSON or bytes); ``token``: "" the server's, None none."""
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        token = self.token if token == "" else token
        sent = {"Authorization": f"token {token}"} if token else {}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            url = path if path.startswith("/") else API + path
            connection.request(method, url, body=data, headers={**sent, **(headers or {})})
            response = connection.getresponse()
            raw = response.read()
            kind = response.getheader("Content-Type", "")
            result = json.loads(raw) if "json" in kind else raw
            return response.status, dict(response.getheaders()), result
        finally:
            connection.close()


def _printed(out: Path, process: subprocess.Popen[bytes], log: Path) -> list[str]:
    """The lines ``mlaas serve`` prints up to its token (it prints that last)."""
    deadline = time.monotonic() + 90
    while True:
        lines = out.read_text().splitlines()
        if lines and lines[-1].startswith("token: "):
            return lines
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"mlaas serve did not start: {lines}\n{log.read_text()}")
        time.sleep(0.2)


@contextmanager
def serve(home: Path, *options: str, config: dict[str, Any] | None = None) -> Iterator[Server]:
    """Run ``python -m mlaas_jupyter serve --port 0 --models <home>/models --root
    <home>/root <options>`` with a generated token and ``config`` in its
    ``jupyter_server_config.json``; on exit stop it with SIGTERM and check that it
    exited cleanly, having logged no traceback (no handler raised unexpectedly)."""
    (home / "config").mkdir(parents=True)
    (home / "config" / "jupyter_server_config.json").write_text(json.dumps(config or {}))
    (home / "root").mkdir()
    command = [sys.executable, "-m", "mlaas_jupyter", "serve", "--port", "0"]
    command += ["--models", str(home / "models"), "--root", str(home / "root"), *options]
    out, log = home / "stdout.txt", home / "stderr.txt"
    with out.open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen(command, env=isolated_env(home), stdout=stdout, stderr=stderr)
    try:
        printed = _printed(out, process, log)
        port = int(printed[-2].rsplit(":", 1)[1].split("/")[0])
        token = printed[-1].removeprefix("token: ").strip()  # none given: made and printed
        yield Server(process, port, token, home / "root", home / "models", printed, log)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


def rows_of(n: int, seed: int = 0, width: int = 28) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{f"f{i}": float(v) for i, v in enumerate(rng.normal(size=width))} for _ in range(n)]


def zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in folder.iterdir():
            archive.write(file, file.name)
    return buffer.getvalue()


def tarred(folder: Path, mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        archive.add(folder, arcname="bundle")
    return buffer.getvalue()
