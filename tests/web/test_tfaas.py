"""``mlaas serve --tfaas``: TFaaS's own clients, unchanged, against a real server.

The requests are made as TFaaS's documented clients make them: its curl recipes
(``POST /json``, ``GET /models``, the ``--data-binary`` bundle upload, ``-F`` forms),
its C++ client's protobuf ``Row`` (encoded here byte by byte as libcurl posts it) and
its Python client's multipart ``DELETE /delete``. The token goes in the header or, for
the C++ client, which sets no headers, in the URL.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from standalone_helpers import Server, rows_of, serve, tarred

from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.web import _tfaas_proto

ROUTES = [
    ("POST", "/json"),
    ("POST", "/proto"),
    ("GET", "/models"),
    ("POST", "/upload"),
    ("DELETE", "/delete"),
    ("GET", "/status"),
]
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, toy_bundles: dict[str, Path]
) -> Iterator[Server]:
    registered = [f"--register={toy_bundles[k]}" for k in ("flat", "multiclass")]
    with serve(tmp_path_factory.mktemp("tfaas"), "--tfaas", *registered) as server:
        yield server


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _length_delimited(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def encode_row(keys: list[str], values: list[float], model: str) -> bytes:
    """``tfaaspb::Row`` as TFaaS's C++ client serialises it (proto3: packed floats)."""
    out = b"".join(_length_delimited(1, key.encode()) for key in keys)
    out += _length_delimited(2, struct.pack(f"<{len(values)}f", *values))
    return out + _length_delimited(3, model.encode()) if model else out


def _fields(data: bytes) -> Iterator[tuple[int, Any]]:
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        field, wire = key >> 3, key & 7
        if wire == 2:
            size, at = _read_varint(data, at)
            yield field, data[at : at + size]
            at += size
        elif wire == 5:
            yield field, struct.unpack("<f", data[at : at + 4])[0]
            at += 4
        else:
            raise AssertionError(f"unexpected wire type {wire}")


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    number = shift = 0
    while True:
        byte = data[at]
        number, shift, at = number | (byte & 0x7F) << shift, shift + 7, at + 1
        if not byte & 0x80:
            return number, at


def decode_predictions(data: bytes) -> list[tuple[str, float]]:
    """``tfaaspb::Predictions`` as the C++ client parses it: (label, probability)s."""
    classes = []
    for _, cls in _fields(data):
        fields = dict(_fields(cls))
        classes.append((fields.get(1, b"").decode(), fields.get(2, 0.0)))
    return classes


def _form(boundary: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    for key, (filename, data) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; '
        head += f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_the_messages_are_tfaas_proto() -> None:
    # the runtime-built classes write the bytes of TFaaS's generated code, field for field
    row = _tfaas_proto.Row(key=["MET_pt", "nJet"], value=[40.5, 2.0], model="higgs")
    assert row.SerializeToString() == encode_row(["MET_pt", "nJet"], [40.5, 2.0], "higgs")
    assert _tfaas_proto.decode_row(encode_row(["a"], [1.5], "")) == (None, ["a"], [1.5])
    reply = _tfaas_proto.encode_predictions([0.25, 0.75], ["bkg", "sig"])
    assert decode_predictions(reply) == [("bkg", 0.25), ("sig", 0.75)]


def test_the_documented_curl_call(server: Server, toy_bundles: dict[str, Path]) -> None:
    assert server.printed[-2].endswith(f"TFaaS's routes at {server.url} (json, proto, models...)")
    rows = rows_of(3)
    keys = list(rows[0])
    expected = load_bundle(toy_bundles["flat"]).predict(rows)
    # curl -X POST -H "Content-Type: application/json" -d '{"keys":..,"values":..,"model":..}'
    for model_field in ("model", "name"):  # TFaaS's Row says "model"; "name" is taken too
        row = {"keys": keys, "values": [rows[0][k] for k in keys], model_field: "toy-flat"}
        status, headers, body = server.call("POST", "/json", row, JSON)
        assert (status, headers["Content-Type"]) == (200, "application/json")
        assert len(body) == 1  # one sigmoid output: TFaaS's [p]
        np.testing.assert_allclose(body, expected[:1], atol=1e-6)
    # TFaaS's Python client and a curl -d without -H send the JSON as a urlencoded form
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = server.call("POST", "/json", row, form)[2]
    np.testing.assert_allclose(body, expected[:1], atol=1e-6)
    several = {"keys": keys, "values": [[r[k] for k in keys] for r in rows], "model": "toy-flat"}
    body = server.call("POST", "/json", several, JSON)[2]
    np.testing.assert_allclose(body, expected.reshape(3, 1), atol=1e-6)
    multi_rows = rows_of(1, width=6)
    probabilities = load_bundle(toy_bundles["multiclass"]).predict(multi_rows)[0]
    row = {
        "keys": list(multi_rows[0]),
        "values": list(multi_rows[0].values()),
        "model": "toy-multi",
    }
    body = server.call("POST", "/json", row, JSON)[2]
    assert len(body) == 3
    np.testing.assert_allclose(body, probabilities, atol=1e-6)
    # no model named and two served: which one is asked
    status, _, body = server.call("POST", "/json", {"keys": keys, "values": [0.0] * 28}, JSON)
    assert (status, body["field"]) == (400, "model")
    assert body["detail"] == "model: name the model to use (served: toy-flat, toy-multi)"


def test_the_cpp_clients_protobuf_round_trip(server: Server, toy_bundles: dict[str, Path]) -> None:
    row = rows_of(1, seed=5)[0]
    keys = list(row)
    values = [float(np.float32(v)) for v in row.values()]  # what a float field carries
    body = encode_row(keys, values, "toy-flat")
    bundle = load_bundle(toy_bundles["flat"])
    expected = bundle.predict([dict(zip(keys, values, strict=True))])[0]
    # libcurl's CURLOPT_POSTFIELDS: a form content type and no Authorization header
    form = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TFClient"}
    status, headers, reply = server.call(
        "POST", f"/proto?token={server.token}", body, form, token=None
    )
    assert (status, headers["Content-Type"]) == (200, "application/octet-stream")
    [(label, probability)] = decode_predictions(reply)
    assert label == bundle.classes[1]
    assert probability == pytest.approx(expected, abs=1e-6)
    multi_row = rows_of(1, width=6)[0]
    body = encode_row(list(multi_row), list(multi_row.values()), "toy-multi")
    reply = server.call("POST", "/proto", body, {"Content-Type": "application/octet-stream"})[2]
    predictions = decode_predictions(reply)
    assert [label for label, _ in predictions] == load_bundle(toy_bundles["multiclass"]).classes
    assert sum(p for _, p in predictions) == pytest.approx(1.0, abs=1e-5)


def test_models_upload_delete_and_status(server: Server, toy_bundles: dict[str, Path]) -> None:
    status, _, models = server.call("GET", "/models")
    assert status == 200
    assert [m["name"] for m in models] == ["toy-flat", "toy-multi"]
    flat = models[0]
    assert (flat["model"], flat["labels"], flat["task"], flat["version"]) == (
        "model.onnx",
        ",".join(load_bundle(toy_bundles["flat"]).classes),
        "binary",
        1,
    )
    assert flat["inputs"] == [f"f{i}" for i in range(28)]
    assert {"input_node", "output_node", "options", "timestamp"} <= set(flat)
    # TFaaS's bundle upload: curl -H "Content-Encoding: gzip" --data-binary @model.tar.gz
    archive = tarred(toy_bundles["regression"], "w:gz")
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"}
    status, _, info = server.call("POST", "/upload?name=reg_a", archive, headers)
    assert (status, info["name"], info["version"], info["task"]) == (200, "reg_a", 1, "regression")
    # TFaaS's form upload: curl -F name=reg_b -F model=@bundle.tar.gz (-F params=@... ignored)
    boundary = "tfaas-boundary-1"
    form = _form(boundary, {"name": "reg_b"}, {"params": ("params.json", b"{}")})
    form = form[: -len(f"--{boundary}--\r\n")]
    form += _form(boundary, {}, {"model": ("bundle.tar.gz", archive)})
    kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    status, _, info = server.call("POST", "/upload", form, kind)
    assert (status, info["name"]) == (200, "reg_b")
    names = [m["name"] for m in server.call("GET", "/models")[2]]
    assert names == ["reg_a", "reg_b", "toy-flat", "toy-multi"]
    row = {"keys": [f"f{i}" for i in range(5)], "values": [0.5] * 5, "model": "reg_b"}
    assert len(server.call("POST", "/json", row, JSON)[2]) == 1
    # TFaaS's Python client: DELETE /delete with a multipart form field "model"
    form = _form(boundary, {"model": "reg_a"}, {})
    status, _, body = server.call("DELETE", "/delete", form, kind)
    assert (status, body) == (200, {"name": "reg_a", "deleted": [1]})
    assert server.call("DELETE", "/delete/reg_b")[:3:2] == (200, {"name": "reg_b", "deleted": [1]})
    assert server.call("DELETE", "/delete?model=reg_b")[0] == 404
    assert [m["name"] for m in server.call("GET", "/models")[2]] == ["toy-flat", "toy-multi"]
    status, _, state = server.call("GET", "/status")
    assert status == 200
    assert state["models"] == 2
    assert state["getRequests"] >= 3
    assert state["postRequests"] >= 3
    assert state["Uptime"] > 0
    assert set(state["Load"]) == {"load1", "load5", "load15"}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_the_token_is_required(server: Server, method: str, path: str) -> None:
    for token in (None, "wrong"):
        status, _, body = server.call(method, path, b"{}", JSON, token=token)
        # as on our routes: refused before anything is read (jupyter_server's token check)
        assert status in {401, 403}
        assert body["detail"].startswith("not authenticated: send the server's token")
    assert server.call(method, f"{path}?token=wrong", b"{}", JSON, token=None)[0] in {401, 403}


def test_bad_requests_are_clear_4xx(server: Server) -> None:
    keys = [f"f{i}" for i in range(28)]
    bad_json: list[tuple[bytes | dict[str, Any] | list[Any], int, str]] = [
        (b"{not json", 400, "body"),
        (b"\xff\xfe", 400, "body"),
        (b"", 400, "body"),
        ([1, 2], 400, "body"),
        ({"values": [1.0]}, 400, "keys"),
        ({"keys": keys}, 400, "values"),
        ({"keys": keys, "values": [1.0], "model": 3}, 400, "model"),
        ({"keys": keys, "values": [1.0], "weights": [1]}, 400, "weights"),
        ({"keys": keys, "values": [1.0], "model": "toy-flat", "name": "toy-multi"}, 400, "name"),
    ]
    for body, want, field in bad_json:
        status, _, reply = server.call("POST", "/json", body, JSON)
        assert (status, reply.get("field")) == (want, field), (body, reply)
    few = {"keys": keys, "values": [1.0, 2.0], "model": "toy-flat"}
    status, _, reply = server.call("POST", "/json", few, JSON)
    assert (status, reply["detail"]) == (
        400,
        "values row 0: expected 28 values (one per key), got 2",
    )
    text = {"keys": keys, "values": ["x"] * 28, "model": "toy-flat"}
    assert server.call("POST", "/json", text, JSON)[0] == 400
    missing = {"keys": keys, "values": [1.0] * 28, "model": "nope"}
    assert server.call("POST", "/json", missing, JSON)[0] == 404
    for garbage in (b"\xff\xff\xff", b"", b'{"keys": []}', encode_row(["f0"], [1.0, 2.0], "")):
        status, _, reply = server.call("POST", "/proto", garbage)
        assert status == 400, (garbage, reply)
        assert reply["field"] in {"body", "key", "value"}, (garbage, reply)
    status, _, reply = server.call("POST", "/upload", b"")
    assert (status, reply["field"]) == (400, "body")
    boundary = "b0"
    form = _form(boundary, {"name": "g"}, {"model": ("tf_model.pb", b"\x08\x01graph")})
    kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    status, _, reply = server.call("POST", "/upload", form, kind)
    assert status == 400
    assert "TFaaS's TensorFlow graph files are not served here" in reply["detail"]
    status, _, reply = server.call("DELETE", "/delete")
    assert (status, reply["field"]) == (400, "model")
    status, headers, reply = server.call("GET", "/json")
    assert (status, headers["Allow"]) == (405, "POST")
    assert server.call("POST", "/models")[1]["Allow"] == "GET"


@pytest.mark.slow
def test_the_routes_are_absent_without_tfaas(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        for method, path in ROUTES:
            assert server.call(method, path, b"{}", JSON)[0] == 404, path
        assert server.call("GET", "models")[0] == 200  # ours are there
