"""JSON bodies of predict: every form and parser gives the same matrix and scores, every
bad value a DataError naming it, and replies are strict JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlaas_jupyter._json import encode_json
from mlaas_jupyter.errors import DataError
from mlaas_jupyter.inference import load_bundle, payload
from mlaas_jupyter.inference.registry import ModelRegistry
from mlaas_jupyter.inference.service import PredictionService


@pytest.fixture
def service(tmp_path: Path, toy_bundles: dict[str, Path]) -> PredictionService:
    registry = ModelRegistry(tmp_path / "models")
    registry.register(toy_bundles["flat"], "flat")
    return PredictionService(registry)


@pytest.fixture(params=["simdjson", "orjson", "json"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with every parser installed (simdjson's road for large columns bodies,
    then orjson), with orjson alone, and with the standard library only."""
    if request.param == "simdjson" and payload.simdjson is None:
        pytest.skip("pysimdjson is not installed")
    if request.param == "orjson" and not payload.HAVE_ORJSON:
        pytest.skip("orjson is not installed")
    if request.param != "simdjson":
        monkeypatch.setattr(payload, "simdjson", None)
    if request.param == "json":
        monkeypatch.setattr(payload, "orjson", None)
    return str(request.param)


def bodies(data: np.ndarray[Any, Any], names: list[str]) -> dict[str, bytes]:
    """The same events in every JSON form (numbers as Python floats)."""
    rows = [dict(zip(names, map(float, row), strict=True)) for row in data]
    columns = {name: [float(v) for v in data[:, k]] for k, name in enumerate(names)}
    values = [[float(v) for v in row] for row in data]
    return {
        "rows": json.dumps({"rows": rows}).encode(),
        "columns": json.dumps({"columns": columns}).encode(),
        "keys_values": json.dumps({"keys": names, "values": values}).encode(),
        "reversed_keys": json.dumps(
            {"keys": names[::-1], "values": [v[::-1] for v in values]}
        ).encode(),
    }


@pytest.mark.parametrize("n", [1, 7, 3000])
def test_every_form_gives_the_same_matrix_and_scores(
    service: PredictionService, toy_bundles: dict[str, Path], parser: str, n: int
) -> None:
    """3000 rows make a body over FAST_JSON_BYTES (Arrow's reader without orjson)."""
    bundle = load_bundle(toy_bundles["flat"])
    names = list(bundle.inputs)
    # float32 events (as read from ROOT files), sent as the exact Python floats
    data = (np.random.default_rng(n).normal(size=(n, len(names))) * 100).astype(np.float32)
    columns = {k: data[:, i] for i, k in enumerate(names)}
    expected = bundle.builder.matrix(columns)
    for form, body in bodies(data, names).items():
        x = service.matrix(bundle, payload.decode(body), "flat")
        np.testing.assert_array_equal(x, expected, err_msg=form)
    np.testing.assert_array_equal(bundle.predict_matrix(expected), bundle.predict(columns))


def test_integers_and_booleans_are_numbers(
    service: PredictionService, toy_bundles: dict[str, Path], parser: str
) -> None:
    bundle = load_bundle(toy_bundles["flat"])
    names = list(bundle.inputs)
    row: dict[str, Any] = dict.fromkeys(names, 2)
    row[names[0]] = True
    generic = bundle.builder.matrix({k: [float(v)] for k, v in row.items()})
    for body in ({"rows": [row]}, {"columns": {k: [v] for k, v in row.items()}}):
        x = service.matrix(bundle, payload.decode(json.dumps(body).encode()), "flat")
        np.testing.assert_array_equal(x, generic)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda r: r.update(f3="1.5"), ["f3", "row 4", "string"]),
        (lambda r: r.update(f3=None), ["f3", "row 4"]),
        (lambda r: r.update(f3=[1.0]), ["f3", "row 4"]),
        (lambda r: r.pop("f3"), ["f3"]),
        (lambda r: r.update(colour=1.0), ["colour"]),
    ],
)
def test_bad_values_name_the_feature(
    service: PredictionService, toy_bundles: dict[str, Path], parser: str, change: Any, words: Any
) -> None:
    bundle = load_bundle(toy_bundles["flat"])
    rows: list[dict[str, Any]] = [dict.fromkeys(bundle.inputs, 0.5) for _ in range(6)]
    change(rows[4])
    for body in (
        {"rows": rows},
        {"columns": {k: [r.get(k, 0.5) for r in rows] for k in rows[4]}},
    ):
        with pytest.raises(DataError) as info:
            service.matrix(bundle, payload.decode(json.dumps(body).encode()), "flat")
        message = str(info.value)
        assert "f3" in message or "colour" in message, message
        if "rows" in body:
            assert all(w in message for w in words), message


def test_json_quirks_are_those_of_the_standard_library(parser: str) -> None:
    assert np.isnan(payload.decode(b'{"rows": [{"a": NaN}]}')["rows"][0]["a"])
    assert float(payload.decode(b'{"a": 100000000000000000000000}')["a"]) == 1e23
    for bad, words in [
        (b'{"rows": [', "malformed JSON body"),
        (b"", "no body"),
        (b'{"a": 1} x', "malformed JSON body: Extra data"),
    ]:
        with pytest.raises(DataError, match=words):
            payload.decode(bad)


def test_replies_are_strict_json_at_float32_precision(parser: str) -> None:
    scores = np.array([0.1, 1 / 3, np.nan, 1e-30], dtype=np.float32)
    reply = json.loads(encode_json({"model": "m", "scores": scores}))
    assert reply["scores"][2] is None
    back = np.array([np.nan if v is None else v for v in reply["scores"]]).astype(np.float32)
    np.testing.assert_array_equal(back, scores)
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)[:, ::2]  # not contiguous
    assert json.loads(encode_json({"scores": matrix}))["scores"] == [[0, 2], [3, 5]]


def test_large_flat_columns_take_the_simdjson_road() -> None:
    if payload.simdjson is None:
        pytest.skip("pysimdjson is not installed")
    data = np.random.default_rng(3).normal(size=(2, 20_000)).astype(np.float32)
    body = json.dumps({"columns": {"a": data[0].tolist(), "b": [int(v) for v in data[1]]}})
    assert len(body) >= payload.FAST_JSON_BYTES
    columns = payload.decode(body.encode())["columns"]
    assert isinstance(columns["a"], np.ndarray)
    assert columns["a"].dtype == np.float64
    np.testing.assert_array_equal(columns["a"].astype(np.float32), data[0])
    np.testing.assert_array_equal(columns["b"], data[1].astype(int))


_BIG = 30_000  # values per column: bodies over FAST_JSON_BYTES


@pytest.mark.parametrize(
    "odd",
    [
        "null",  # not a number
        "true",
        '"1.5"',
        "[1.0]",  # nested: simdjson would flatten it
        "1e400",  # out of float range
        "100000000000000000000000",  # beyond 64 bits
        "NaN",  # not JSON, accepted by json.loads
    ],
)
def test_large_bodies_with_odd_values_go_the_ordinary_road(
    monkeypatch: pytest.MonkeyPatch, odd: str
) -> None:
    """Whatever simdjson's road does not take is read exactly as without it."""
    if payload.simdjson is None:
        pytest.skip("pysimdjson is not installed")
    values = ",".join(["0.5"] * (_BIG - 1) + [odd])
    body = ('{"columns": {"a": [' + values + '], "b": [' + values + "]}}").encode()

    def read() -> Any:
        try:
            return payload.decode(body)
        except DataError as err:
            return f"DataError: {err}"

    fast = read()
    monkeypatch.setattr(payload, "simdjson", None)
    ordinary = read()
    assert not isinstance(fast, str) or fast == ordinary
    if not isinstance(fast, str):
        assert not isinstance(fast["columns"]["a"], np.ndarray)  # read by orjson/json
        assert repr(fast["columns"]["a"][-1]) == repr(ordinary["columns"]["a"][-1])


def test_a_simdjson_parser_serves_body_after_body() -> None:
    """A parser holds one document: nothing of one body may block the next."""
    if payload.simdjson is None:
        pytest.skip("pysimdjson is not installed")
    for k in range(3):
        column = [float(k)] * _BIG
        body = json.dumps({"columns": {"a": column}}).encode()
        assert payload.decode(body)["columns"]["a"][0] == k
        with pytest.raises(DataError, match="malformed JSON body"):
            payload.decode(body[:-1] + b" " * 10)
