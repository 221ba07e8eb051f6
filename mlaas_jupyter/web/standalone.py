"""``mlaas serve``: the same extension in a Jupyter server of its own.

The standalone server is a ``jupyter_server`` that loads only the mlaas extension:
the same routes, the same token authentication (``Authorization: token <T>`` or
``?token=<T>``), the same errors as in JupyterLab, plus the jobs, the data browsing
and the kernel, local and dask executors. No other extension (JupyterLab, terminals)
is loaded; jupyter_server's own API (``/api/status``, ``/api/kernels``,
``/api/contents`` under ``--root``) is there too, behind the same token, as in any
Jupyter server. With ``tfaas`` (``mlaas serve --tfaas``) TFaaS's routes (``/json``,
``/proto``, ``/models``, ``/upload``, ``/delete``, ``/status``) are mounted at the root
too, for TFaaS's clients (:mod:`._tfaas`).
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from jupyter_server.serverapp import ServerApp

from .extension import MlaasExtension

__all__ = ["MlaasServeApp", "ServeProcess", "make_server", "new_token"]


class MlaasServeApp(MlaasExtension):
    """The mlaas extension, launched as the only extension of its server."""

    load_other_extensions = False


def new_token() -> str:
    """A random token (URL-safe, 32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


def make_server(
    *,
    token: str,
    models_dir: str | Path | None = None,
    root_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    tfaas: bool = False,
    extra: Sequence[str] = (),
) -> ServerApp:
    """A started-up (listening, not yet serving) server; ``app.start()`` serves.

    Parameters
    ----------
    token
        The API token clients must send.
    models_dir
        The model registry folder (default: the core's).
    root_dir
        The data root (default: the current folder).
    host, port
        Where to listen (port 0: a free one; ``app.port`` then tells which).
    tfaas
        Mount TFaaS's routes at the root too.
    extra
        More ``--Class.trait=value`` options (``c.Mlaas.*``, ``c.DaskExecutor.*`` ...).
    """
    if not token:
        raise ValueError("a token is required")
    argv = [
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={Path(root_dir or Path.cwd()).resolve()}",
        f"--MlaasExtension.tfaas={tfaas}",
    ]
    if models_dir is not None:
        argv.append(f"--Mlaas.models_dir={Path(models_dir).resolve()}")
    app: ServerApp = MlaasServeApp.initialize_server(argv=[*argv, *extra])
    return app


class ServeProcess:
    """``mlaas serve`` in a subprocess on a free loopback port, until :meth:`stop`.

    For notebooks and scripts that run without a Jupyter server (nbconvert, papermill,
    VS Code) and want to show the models over HTTP::

        server = ServeProcess(models_dir=client.info()["models_dir"])
        server.url, server.token   # http://127.0.0.1:<port>/ and its token
        server.stop()

    Parameters
    ----------
    models_dir
        The model registry to serve.
    root_dir
        The data root (default: the current folder).
    timeout
        Seconds to wait for the server to answer.
    """

    def __init__(
        self,
        models_dir: str | Path | None = None,
        root_dir: str | Path | None = None,
        *,
        timeout: float = 60.0,
    ) -> None:
        self.token = new_token()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{port}/"
        command = [
            sys.executable,
            "-m",
            "mlaas_jupyter",
            "serve",
            "--port",
            str(port),
            "--token",
            self.token,
            "--root",
            str(Path(root_dir or Path.cwd())),
        ]
        if models_dir is not None:
            command += ["--models", str(models_dir)]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - what it printed, closed by stop()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(
            self.url + "mlaas/api/info", headers={"Authorization": f"token {self.token}"}
        )
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5):
                    return
            except OSError as err:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    self.log.seek(0)
                    said = self.log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"mlaas serve did not start ({err}): {said}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (it finishes the requests under way)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
