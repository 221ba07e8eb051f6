"""``mlaas serve`` over real HTTP: the mlaas extension alone in a Jupyter server of
its own, started as users start it (``python -m mlaas_jupyter serve --port 0``), and
:class:`ServeProcess`. The model routes: uploads, versions, predictions (rows,
columns, TFaaS keys/values, Arrow), friend trees, errors, tokens."""

from __future__ import annotations

import http.client
import io
import json
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import uproot
from standalone_helpers import Server, isolated_env, rows_of, serve, tarred, zipped

from mlaas_jupyter.client import Client
from mlaas_jupyter.errors import MlaasError
from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.inference.payload import ARROW_STREAM
from mlaas_jupyter.inference.registry import ModelRegistry
from mlaas_jupyter.web.standalone import ServeProcess

#: the limits the test server reads from its jupyter_server_config.json (c.Mlaas.*)
LIMITS = {"max_predict_bytes": 2_000_000, "max_upload_bytes": 5_000_000}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, toy_bundles: dict[str, Path]
) -> Iterator[Server]:
    registered = [f"--register={toy_bundles[k]}" for k in ("flat", "jagged", "multiclass")]
    with serve(tmp_path_factory.mktemp("serve"), *registered, config={"Mlaas": LIMITS}) as server:
        yield server


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
    # jupyter_server's token check: a missing or wrong token is 401, in our JSON errors
    status, headers, body = server.call("GET", "models", token=None)
    assert (status, body["error"]) == (401, "Unauthorized")
    assert body["detail"].startswith("not authenticated: send the server's token")
    assert headers["Content-Type"] == "application/json"
    assert {k.lower(): v for k, v in headers.items()}["www-authenticate"] == 'token realm="mlaas"'
    assert server.call("GET", "info", token=None)[0] == 401
    assert server.call("GET", "models", token="wrong")[0] == 401
    assert server.call("POST", "models/toy-flat/predict", {"rows": []}, token="wrong")[0] == 401
    assert server.call("PUT", "models/toy-flat", b"x", token=None)[0] == 401  # before the 405
    assert server.call("GET", "nothing/here", token=None)[0] == 401  # before the 404
    assert server.call("GET", "models?token=wrong", token=None)[0] == 401
    assert server.call("GET", f"models?token={server.token}", token=None)[0] == 200
    bearer = {"Authorization": f"Bearer {server.token}"}
    assert server.call("GET", "models", headers=bearer, token=None)[0] == 200
    rows = {"rows": rows_of(1)}
    assert (
        server.call("POST", f"models/toy-flat/predict?token={server.token}", rows, token=None)[0]
        == 200
    )  # a token-authenticated POST needs no XSRF token


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
        ("POST", "models/toy-flat/predict_file", {"path": "x.root", "out": ""}, 400, "out"),
        # no "out": scores/ beside the input, which must exist
        ("POST", "models/toy-flat/predict_file", {"path": "x.root"}, 400, "no such file"),
        (
            "POST",
            "models/toy-flat/predict_file",
            {"path": "x.root", "out": "y"},
            400,
            "no such file",
        ),
        (
            "POST",
            "models/toy-flat/predict_file",
            {"path": "/etc/passwd", "out": "y"},
            403,
            "outside the data roots",
        ),
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


def test_uploads(server: Server, toy_bundles: dict[str, Path]) -> None:
    data = zipped(toy_bundles["regression"])
    status, headers, info = server.call("POST", "models?name=reg&filename=reg.zip", data)
    assert (status, info["name"], info["version"], info["task"]) == (201, "reg", 1, "regression")
    assert headers["Location"] == "/mlaas/api/models/reg"
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
    for mode, filename, version in (("w:gz", "b.tar.gz", 3), ("w", "b.tar", 4)):
        archive = tarred(toy_bundles["regression"], mode)
        status, _, info = server.call("POST", f"models?name=reg&filename={filename}", archive)
        assert (status, info["name"], info["version"]) == (201, "reg", version), info
    status, _, listing = server.call("GET", "models/reg")
    assert (status, listing["latest"]) == (200, 4)
    assert [v["version"] for v in listing["versions"]] == [1, 2, 3, 4]
    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("../../evil.txt", b"x")
    status, _, reply = server.call("POST", "models?filename=evil.zip", hostile.getvalue())
    assert status == 400
    assert "'../../evil.txt' escapes the archive" in reply["detail"]
    status, _, reply = server.call("POST", "models?filename=big.zip", b"x" * 5_000_001)
    assert (status, reply["error"]) == (413, http.client.responses[413])
    assert "the limit is 5000000" in reply["detail"]
    rows = [{f"f{i}": 0.5 for i in range(5)}]
    expected = load_bundle(toy_bundles["regression"]).predict(rows)
    for version in (1, 4):
        status, _, body = server.call(
            "POST", f"models/reg/predict?version={version}", {"rows": rows}
        )
        assert (status, body["version"], body["task"]) == (200, version, "regression")
        np.testing.assert_allclose(body["scores"], expected, atol=1e-6)
    assert server.call("DELETE", "models/reg?version=1")[2] == {"name": "reg", "deleted": [1]}
    assert server.call("GET", "models/reg")[2]["latest"] == 4
    assert server.call("GET", "models/reg?version=1")[0] == 404
    assert server.call("DELETE", "models/reg")[2] == {"name": "reg", "deleted": [2, 3, 4]}
    assert server.call("GET", "models/reg")[0] == 404
    names = [m["name"] for m in server.call("GET", "models")[2]["models"]]
    assert sorted(set(names)) == ["toy-flat", "toy-jagged", "toy-multi"]


def test_predict_file_writes_a_friend_tree(server: Server, toy_bundles: dict[str, Path]) -> None:
    rows = rows_of(300, seed=5)
    source = server.root / "events.root"
    columns = {k: np.array([r[k] for r in rows], dtype=np.float32) for k in rows[0]}
    with uproot.recreate(source) as handle:
        handle.mktree("Events", {k: np.float32 for k in columns}).extend(columns)
    request = {"path": "events.root", "out": "events_score.root"}
    status, _, reply = server.call("POST", "models/toy-flat/predict_file", request)
    assert status == 200, reply
    out = server.root / "events_score.root"
    assert (reply["entries"], reply["branches"], reply["version"]) == (300, ["score"], 1)
    assert (reply["file"], reply["out"]) == (str(source.resolve()), str(out.resolve()))
    with uproot.open(out) as handle:
        scores = handle["Events"]["score"].array(library="np")
    expected = load_bundle(toy_bundles["flat"]).predict(str(source))
    np.testing.assert_allclose(scores, expected, atol=0)
    request = {"path": "events.root", "out": "../escaped.root"}
    status, _, reply = server.call("POST", "models/toy-flat/predict_file", request)
    assert (status, reply["error"]) == (403, "Forbidden"), reply
    assert not (server.root.parent / "escaped.root").exists()
    request = {"path": "events.root", "out": "x.root", "step_size": 10}
    status, _, reply = server.call("POST", "models/toy-flat/predict_file", request)
    assert (status, reply["field"]) == (400, "step_size"), reply


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


def test_client_over_http(server: Server, toy_bundles: dict[str, Path]) -> None:
    client = Client(server.url, server.token)
    assert (client.transport, client.url) == ("http", server.url)
    assert client.info()["models_dir"] == str(server.models.resolve())
    assert "toy-flat" in [m["name"] for m in client.models()["models"]]
    rows = rows_of(5, seed=9)
    reply = client.predict("toy-flat", rows)
    expected = load_bundle(toy_bundles["flat"]).predict(rows)
    np.testing.assert_allclose(reply["scores"], expected, atol=1e-6)
    columns = {k: np.array([r[k] for r in rows], dtype=np.float32) for k in rows[0]}
    np.testing.assert_allclose(client.predict("toy-flat", columns)["scores"], expected, atol=1e-6)
    with pytest.raises(MlaasError) as refused:
        Client(server.url, "wrong", transport="http")
    assert "refused the request: not authenticated: send the server's token" in str(refused.value)


def test_serve_process(
    tmp_path: Path, toy_bundles: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(key, value)  # the subprocess inherits them
    monkeypatch.delenv("MLAAS_TOKEN", raising=False)
    models = tmp_path / "models"
    ModelRegistry(models).register(toy_bundles["flat"])
    with ServeProcess(models_dir=models, root_dir=tmp_path) as served:
        assert served.url.startswith("http://127.0.0.1:")
        assert len(served.token) >= 40
        request = urllib.request.Request(
            served.url + "mlaas/api/models", headers={"Authorization": f"token {served.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            listing = json.loads(response.read())
        assert [m["name"] for m in listing["models"]] == ["toy-flat"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(served.url + "mlaas/api/models?token=wrong", timeout=30)
        assert refused.value.code == 401
    assert served.process.returncode == 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(served.url + "mlaas/api/info", timeout=5)
