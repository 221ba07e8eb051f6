"""The model routes over real HTTP: ``mlaas serve`` (in a thread and as a subprocess)
and the Jupyter Server handlers (pytest-jupyter)."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mlaas_jupyter.client import Client
from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.inference.payload import ARROW_STREAM
from mlaas_jupyter.web.standalone import ServerThread, make_context

TOKEN = "secret-token"
API = "/mlaas/api/"


class Server:
    """A ServerThread and a way to call it."""

    def __init__(self, thread: ServerThread) -> None:
        self.thread = thread
        self.port = thread.port

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = TOKEN,
    ) -> tuple[int, dict[str, str], Any]:
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
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


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, toy_bundles: dict[str, Path]
) -> Iterator[Server]:
    context = make_context(str(tmp_path_factory.mktemp("models")), max_delay_ms=2)
    context.max_predict_bytes = 2_000_000
    context.max_upload_bytes = 5_000_000
    context.service.max_rows = 5000
    for key in ("flat", "jagged", "multiclass"):
        context.registry.register(toy_bundles[key])
    thread = ServerThread(context, TOKEN).start()
    yield Server(thread)
    thread.stop()


def rows_of(n: int, seed: int = 0, width: int = 28) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{f"f{i}": float(v) for i, v in enumerate(rng.normal(size=width))} for _ in range(n)]


def zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in folder.iterdir():
            archive.write(file, file.name)
    return buffer.getvalue()


def test_authentication(server: Server) -> None:
    assert server.call("GET", "health", token=None)[0] == 200
    status, _, body = server.call("GET", "models", token=None)
    assert status == 401
    assert "Authorization: token" in body["detail"]
    assert server.call("GET", "models", token="wrong")[0] == 403
    assert server.call("POST", "models/toy-flat/predict", {"rows": []}, token="wrong")[0] == 403
    assert server.call("GET", f"models?token={TOKEN}", token=None)[0] == 200
    assert server.call("GET", "models", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200


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
    rows = rows_of(40)
    expected = load_bundle(toy_bundles["flat"]).predict(rows)
    status, _, body = server.call("POST", "models/toy-flat/predict?version=1", {"rows": rows})
    assert (status, body["model"], body["version"], body["task"]) == (200, "toy-flat", 1, "binary")
    np.testing.assert_allclose(body["scores"], expected, rtol=0, atol=1e-6)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    body = server.call("POST", "models/toy-flat/predict", {"columns": columns})[2]
    np.testing.assert_allclose(body["scores"], expected, rtol=0, atol=1e-6)
    batch = pa.record_batch({k: np.array(v) for k, v in columns.items()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    arrow = {"Content-Type": ARROW_STREAM, "Accept": ARROW_STREAM}
    status, headers, raw = server.call(
        "POST", "models/toy-flat/predict", sink.getvalue().to_pybytes(), arrow
    )
    assert (status, headers["Content-Type"]) == (200, ARROW_STREAM)
    scores = pa.ipc.open_stream(pa.py_buffer(raw)).read_all().column("score").to_numpy()
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    jet_rows = [{"f0": 1.0, "f1": 2, "f2": -1.0, "f3": 0.5, "Jet_pt": [30.0, 80.5]}]
    body = server.call("POST", "models/toy-jagged/predict", {"rows": jet_rows})[2]
    np.testing.assert_allclose(
        body["scores"], load_bundle(toy_bundles["jagged"]).predict(jet_rows), atol=1e-6
    )


def test_bad_requests_are_4xx_json_and_the_server_keeps_serving(server: Server) -> None:
    good = {"rows": rows_of(1)}
    deep = b"[" * 100_000 + b"]" * 100_000
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
        ("POST", "models/toy-flat/predict", {"rows": rows_of(6000, width=1)}, 413, "limit is 5000"),
        ("POST", "models/toy-flat/predict", b"x" * 2_000_001, 413, "the limit is 2000000"),
        ("POST", "models/toy-flat/predict?version=x", good, 400, "version: expected a positive"),
        ("POST", "models/toy-flat/predict?version=9", good, 404, "has no version 9"),
        ("POST", "models/nope/predict", good, 404, "no model named 'nope'"),
        ("POST", "models/..%2F..%2Fetc/predict", good, 404, "no model named"),
        ("GET", "models/nope", None, 404, "no model named"),
        ("DELETE", "models/nope", None, 404, "no model named"),
        ("GET", "nothing/here", None, 404, "no such endpoint"),
        ("PUT", "models/toy-flat", b"x", 405, "Method Not Allowed"),
        ("POST", "models", b"", 400, "empty upload"),
        ("POST", "models?filename=x.zip", b"PK\x03\x04garbage", 400, "not a readable zip"),
        ("POST", "models/toy-flat/predict_file", {"path": "x", "out": "y"}, 404, "not enabled"),
    ]
    for method, path, body, status, message in cases:
        got, headers, reply = server.call(method, path, body)
        assert got == status, (path, reply)
        assert headers["Content-Type"].startswith("application/json")
        assert set(reply) == {"error", "detail"}
        assert message in reply["detail"], (path, reply)
        assert server.call("POST", "models/toy-flat/predict", good)[0] == 200


def test_uploads(server: Server, toy_bundles: dict[str, Path], tmp_path: Path) -> None:
    data = zipped(toy_bundles["regression"])
    status, headers, info = server.call("POST", "models?name=reg&filename=reg.zip", data)
    assert (status, info["name"], info["version"], info["task"]) == (201, "reg", 1, "regression")
    assert headers["Location"].endswith("/mlaas/api/models/reg")
    boundary = "xyzBOUNDARY"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nreg\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="b.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    status, _, info = server.call("POST", "models", form, kind)
    assert (status, info["name"], info["version"]) == (201, "reg", 2)
    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("../../evil.txt", b"x")
    status, _, reply = server.call("POST", "models?filename=evil.zip", hostile.getvalue())
    assert status == 400
    assert "'../../evil.txt' escapes the archive" in reply["detail"]
    assert server.call("POST", "models?filename=big.zip", b"x" * 5_000_001)[0] == 413
    rows = [{f"f{i}": 0.5 for i in range(5)}]
    assert server.call("POST", "models/reg/predict", {"rows": rows})[0] == 200
    assert server.call("DELETE", "models/reg?version=1")[2] == {"name": "reg", "deleted": [1]}
    assert server.call("GET", "models/reg")[2]["latest"] == 2
    assert server.call("DELETE", "models/reg")[2]["deleted"] == [2]
    assert server.call("GET", "models/reg")[0] == 404


def test_concurrent_clients_get_their_own_scores(
    server: Server, toy_bundles: dict[str, Path]
) -> None:
    rows = rows_of(24, seed=3)
    expected = load_bundle(toy_bundles["flat"]).predict(rows)
    got: dict[int, float] = {}

    def send(i: int) -> None:
        got[i] = server.call("POST", "models/toy-flat/predict", {"rows": [rows[i]]})[2]["scores"][0]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(rows))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_allclose([got[i] for i in range(len(rows))], expected, atol=1e-6)


def test_client_predict(server: Server, toy_bundles: dict[str, Path]) -> None:
    client = Client(server.thread.url, TOKEN)
    assert client.mode == "server"
    rows = rows_of(5, seed=9)
    reply = client.predict("toy-flat", rows)
    expected = load_bundle(toy_bundles["flat"]).predict(rows)
    np.testing.assert_allclose(reply["scores"], expected, atol=1e-6)
    columns = {k: np.array([r[k] for r in rows], dtype=np.float32) for k in rows[0]}
    np.testing.assert_allclose(client.predict("toy-flat", columns)["scores"], expected, atol=1e-6)


def test_cli_serve_subprocess(toy_bundles: dict[str, Path], tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "MLAAS_TOKEN"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "mlaas_jupyter", "serve", "--models", str(tmp_path / "m")]
    command += ["--port", "0", "--register", str(toy_bundles["flat"])]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert "as 'toy-flat' version 1" in lines[0]
        port = int(lines[1].rsplit(":", 1)[1].split("/")[0])
        token = lines[2].split("token: ")[1].strip()  # generated and printed
        client = Client(f"http://127.0.0.1:{port}/", token)
        rows = rows_of(3)
        expected = load_bundle(toy_bundles["flat"]).predict(rows)
        np.testing.assert_allclose(client.predict("toy-flat", rows)["scores"], expected, atol=1e-6)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


EXTENSION = """
import os
from jupyter_server.utils import url_path_join
from mlaas_jupyter.web._models_api import ServeContext
from mlaas_jupyter.web._models_handlers import model_handlers
from mlaas_jupyter.inference.registry import ModelRegistry
from mlaas_jupyter.inference.service import PredictionService


def _jupyter_server_extension_points():
    return [{"module": "serve_test_extension"}]


def _load_jupyter_server_extension(serverapp):
    registry = ModelRegistry(os.environ["MLAAS_TEST_MODELS"])
    context = ServeContext(registry, PredictionService(registry))
    base = url_path_join(serverapp.web_app.settings["base_url"], "mlaas/api/")
    routes = [(url_path_join(base, p), c, k) for p, c, k in model_handlers(context)]
    serverapp.web_app.add_handlers(".*$", routes)
"""
CONFIG = """
c.ServerApp.jpserver_extensions = {
    "serve_test_extension": True, "mlaas_jupyter.web": False, "jupyterlab": False,
    "notebook_shim": False, "jupyter_lsp": False, "jupyter_server_terminals": False,
}
"""


@pytest.mark.slow
def test_jupyter_server_handlers(toy_bundles: dict[str, Path], tmp_path: Path) -> None:
    """The APIHandler classes in a real Jupyter server: its token auth, our JSON errors."""
    import socket
    import time

    from mlaas_jupyter.inference.registry import ModelRegistry

    ModelRegistry(tmp_path / "models").register(toy_bundles["flat"])
    (tmp_path / "serve_test_extension.py").write_text(EXTENSION)
    (tmp_path / "config.py").write_text(CONFIG)
    (tmp_path / "root").mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, MLAAS_TEST_MODELS=str(tmp_path / "models"), JUPYTER_PLATFORM_DIRS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(root), env.get("PYTHONPATH", "")])
    env["JUPYTER_CONFIG_DIR"] = env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "jupyter")
    command = [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser"]
    command += ["--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0"]
    command += [f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp_path / 'root'}"]
    command += [f"--config={tmp_path / 'config.py'}"]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server.__new__(Server)
    server.port = port
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if server.call("GET", "/api/status")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the Jupyter server did not start"
            time.sleep(0.2)
        assert server.call("GET", "models", token=None)[0] == 403
        status, _, body = server.call("GET", "models")
        assert (status, [m["name"] for m in body["models"]]) == (200, ["toy-flat"])
        rows = rows_of(4)
        expected = load_bundle(toy_bundles["flat"]).predict(rows)
        status, _, body = server.call("POST", "models/toy-flat/predict", {"rows": rows})
        assert status == 200
        np.testing.assert_allclose(body["scores"], expected, atol=1e-6)
        status, _, body = server.call("POST", "models/toy-flat/predict", b"{oops")
        assert (status, body["error"]) == (400, "Bad Request")
        assert "malformed JSON" in body["detail"]
        assert server.call("GET", "models/nope")[0] == 404
        data = zipped(toy_bundles["multiclass"])
        status, _, info = server.call("POST", "models?filename=m.zip", data)
        assert (status, info["name"], info["classes"]) == (
            201,
            "toy-multi",
            ["bkg", "sig", "other"],
        )
        assert server.call("DELETE", "models/toy-multi")[0] == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
