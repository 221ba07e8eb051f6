"""``mlaas serve`` over real HTTP: the mlaas extension alone in a Jupyter server of
its own, started as users start it (``python -m mlaas_jupyter serve --port 0``), and
:class:`ServeProcess`. The model routes: uploads, versions, predictions (rows,
columns, TFaaS keys/values, Arrow), friend trees, errors, tokens."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import uproot

from mlaas_jupyter.client import Client
from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.inference.payload import ARROW_STREAM
from mlaas_jupyter.web.standalone import ServeProcess

API = "/mlaas/api/"
REPO = Path(__file__).resolve().parents[2]
#: the limits the test server reads from its jupyter_server_config.json (c.Mlaas.*)
LIMITS = {"max_predict_bytes": 2_000_000, "max_upload_bytes": 5_000_000}


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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, toy_bundles: dict[str, Path]) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("serve")
    (home / "config").mkdir()
    (home / "config" / "jupyter_server_config.json").write_text(json.dumps({"Mlaas": LIMITS}))
    (home / "root").mkdir()
    command = [sys.executable, "-m", "mlaas_jupyter", "serve", "--port", "0"]
    command += ["--models", str(home / "models"), "--root", str(home / "root")]
    for key in ("flat", "jagged", "multiclass"):
        command += ["--register", str(toy_bundles[key])]
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
    assert "Traceback" not in log.read_text()  # no handler raised unexpectedly (a 500)


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
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        archive.add(folder, arcname="bundle")
    return buffer.getvalue()


def test_startup_and_what_is_served(server: Server, toy_bundles: dict[str, Path]) -> None:
    assert server.printed[:4] == [
        f"registered {toy_bundles['flat']} as 'toy-flat' version 1",
        f"registered {toy_bundles['jagged']} as 'toy-jagged' version 1",
        f"registered {toy_bundles['multiclass']} as 'toy-multi' version 1",
        f"mlaas serve: 3 model(s) from {server.models.resolve()} "
        f"at http://127.0.0.1:{server.port}/mlaas/api/",
    ]
    status, _, info = server.call("GET", "info")
    assert status == 200
    assert info["data_roots"] == [str(server.root.resolve())]
    assert info["models_dir"] == str(server.models.resolve())
    assert (info["default_executor"], info["executors"]) == ("kernel", ["local", "dask", "kernel"])
    # the extension alone: no JupyterLab (installed here) in this server
    assert server.call("GET", f"/lab?token={server.token}")[0] == 404


def test_authentication(server: Server) -> None:
    # jupyter_server's token check: a missing or wrong token is 403, in our JSON errors
    status, headers, body = server.call("GET", "models", token=None)
    assert (status, body) == (403, {"error": "Forbidden", "detail": "Forbidden"})
    assert headers["Content-Type"] == "application/json"
    assert server.call("GET", "info", token=None)[0] == 403
    assert server.call("GET", "models", token="wrong")[0] == 403
    assert server.call("POST", "models/toy-flat/predict", {"rows": []}, token="wrong")[0] == 403
    assert server.call("PUT", "models/toy-flat", b"x", token=None)[0] == 403  # before the 405
    assert server.call("GET", "nothing/here", token=None)[0] == 403  # before the 404
    assert server.call("GET", "models?token=wrong", token=None)[0] == 403
    assert server.call("GET", f"models?token={server.token}", token=None)[0] == 200
    bearer = {"Authorization": f"Bearer {server.token}"}
    assert server.call("GET", "models", headers=bearer, token=None)[0] == 200
    rows = {"rows": rows_of(1)}
    assert server.call("POST", f"models/toy-flat/predict?token={server.token}", rows, token=None)[
        0
    ] == 200  # a token-authenticated POST needs no XSRF token


def test_models_and_predictions(server: Server, toy_bundles: dict[str, Path]) -> None:
    status, _, body = server.call("GET", "models")
    assert status == 200
    assert sorted(m["name"] for m in body["models"]) == ["toy-flat", "toy-jagged", "toy-multi"]
    status, _, body = server.call("GET", "models/toy-multi")
    assert (status, body["latest"], body["versions"][0]["classes"]) == (
        200,
        1,
        ["bkg", "sig", "other"],
    )
    status, _, body = server.call("GET", "models/toy-multi?version=1")
    assert (status, body["version"], body["task"]) == (200, 1, "multiclass")
    rows = rows_of(40)
    expected = load_bundle(toy_bundles["flat"]).predict(rows)
    status, _, body = server.call("POST", "models/toy-flat/predict?version=1", {"rows": rows})
    assert (status, body["model"], body["version"], body["task"]) == (200, "toy-flat", 1, "binary")
    np.testing.assert_allclose(body["scores"], expected, rtol=0, atol=1e-6)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    body = server.call("POST", "models/toy-flat/predict", {"columns": columns})[2]
    np.testing.assert_allclose(body["scores"], expected, rtol=0, atol=1e-6)
    keys = list(rows[0])  # TFaaS: keys, and values as one list per event
    tfaas = {"keys": keys, "values": [[r[k] for k in keys] for r in rows]}
    body = server.call("POST", "models/toy-flat/predict", tfaas)[2]
    np.testing.assert_allclose(body["scores"], expected, rtol=0, atol=1e-6)
    one = {"keys": keys, "values": [rows[0][k] for k in keys]}  # one event, a flat list
    body = server.call("POST", "models/toy-flat/predict", one)[2]
    np.testing.assert_allclose(body["scores"], expected[:1], rtol=0, atol=1e-6)
    batch = pa.record_batch({k: np.array(v) for k, v in columns.items()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    arrow = {"Content-Type": ARROW_STREAM, "Accept": ARROW_STREAM}
    status, headers, raw = server.call(
        "POST", "models/toy-flat/predict", sink.getvalue().to_pybytes(), arrow
    )
    assert (status, headers["Content-Type"]) == (200, ARROW_STREAM)
    table = pa.ipc.open_stream(pa.py_buffer(raw)).read_all()
    np.testing.assert_allclose(table.column("score").to_numpy(), expected, rtol=0, atol=1e-6)
    assert json.loads(table.schema.metadata[b"model"]) == "toy-flat"
    multi = load_bundle(toy_bundles["multiclass"]).predict(rows_of(3, width=6))
    body = server.call("POST", "models/toy-multi/predict", {"rows": rows_of(3, width=6)})[2]
    assert body["classes"] == ["bkg", "sig", "other"]
    np.testing.assert_allclose(body["scores"], multi, rtol=0, atol=1e-6)
    jet_rows = [{"f0": 1.0, "f1": 2, "f2": -1.0, "f3": 0.5, "Jet_pt": [30.0, 80.5]}]
    body = server.call("POST", "models/toy-jagged/predict", {"rows": jet_rows})[2]
    np.testing.assert_allclose(
        body["scores"], load_bundle(toy_bundles["jagged"]).predict(jet_rows), atol=1e-6
    )


def test_bad_requests_are_4xx_json_and_the_server_keeps_serving(server: Server) -> None:
    good = {"rows": rows_of(1)}
    deep = b"[" * 100_000 + b"]" * 100_000
    too_many = {"columns": {"f0": [0.5] * 200_001}}  # the service's default: 200000 events
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "models/toy-flat/predict", b'{"rows": [', 400, "malformed JSON"),
        ("POST", "models/toy-flat/predict", b"", 400, "no body"),
        ("POST", "models/toy-flat/predict", b"\xff\xfe", 400, "malformed JSON"),
        ("POST", "models/toy-flat/predict", deep, 400, "maximum recursion depth"),
        ("POST", "models/toy-flat/predict", {"rows": [{"f0": 1.0}]}, 400, "missing input features"),
        (
            "POST",
            "models/toy-flat/predict",
            {"rows": [{**good["rows"][0], "x": 1}]},
            400,
            "unknown features: x",
        ),
        ("POST", "models/toy-flat/predict", {"rows": [1, 2]}, 400, "row 0: expected an object"),
        ("POST", "models/toy-flat/predict", {"columns": {"f0": {"a": 1}}}, 400, "feature"),
        ("POST", "models/toy-flat/predict", {"keys": 5, "values": 5}, 400, "'keys' must be a list"),
        ("POST", "models/toy-flat/predict", too_many, 413, "the limit is 200000"),
        ("POST", "models/toy-flat/predict", b"x" * 2_000_001, 413, "the limit is 2000000"),
        ("POST", "models/toy-flat/predict?version=x", good, 400, "version"),
        ("POST", "models/toy-flat/predict?version=9", good, 404, "has no version 9"),
        ("POST", "models/toy-flat/predict?colour=red", good, 400, "unknown"),
        ("POST", "models/nope/predict", good, 404, "no model named 'nope'"),
        ("POST", "models/..%2F..%2Fetc/predict", good, 404, "no model named"),
        ("GET", "models/nope", None, 404, "no model named"),
        ("DELETE", "models/nope", None, 404, "no model named"),
        ("GET", "nothing/here", None, 404, "no such endpoint"),
        ("PUT", "models/toy-flat", b"x", 405, "PUT is not allowed here; allowed: GET, DELETE"),
        ("POST", "models", b"", 400, "empty upload"),
        ("POST", "models?filename=x.zip", b"PK\x03\x04garbage", 400, "not a readable zip"),
        ("POST", "models/toy-flat/predict_file", {"path": "x.root"}, 400, "out"),
        ("POST", "models/toy-flat/predict_file", {"path": "x.root", "out": "y"}, 404, "x.root"),
        ("POST", "models/toy-flat/predict_file", {"path": "/etc/passwd", "out": "y"}, 403, "root"),
    ]
    for method, path, body, status, message in cases:
        got, headers, reply = server.call(method, path, body)
        assert got == status, (path, reply)
        assert headers["Content-Type"] == "application/json"
        assert set(reply) - {"field"} == {"error", "detail"}, reply
        assert message in reply["detail"], (path, reply)
        if got == 405:
            assert headers["Allow"] == "GET, DELETE"
        assert server.call("POST", "models/toy-flat/predict", good)[0] == 200
