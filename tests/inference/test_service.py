"""The prediction service: every payload form scores like ``load_bundle(...).predict``,
errors name what is wrong, and concurrent requests share model calls (micro-batching)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import uproot

from mlaas_jupyter.errors import DataError
from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.inference.payload import ARROW_STREAM, decode, encode_arrow, wants_arrow
from mlaas_jupyter.inference.registry import ModelNotFound, ModelRegistry
from mlaas_jupyter.inference.service import PayloadTooLarge, PredictionService

NAMES = {
    "flat": "toy-flat",
    "jagged": "toy-jagged",
    "multiclass": "toy-multi",
    "regression": "toy-reg",
}


@pytest.fixture
def service(tmp_path: Path, toy_bundles: dict[str, Path]) -> PredictionService:
    registry = ModelRegistry(tmp_path / "models")
    for path in toy_bundles.values():
        registry.register(path)
    return PredictionService(registry, max_rows=1000, max_delay_ms=5)


def make_rows(bundle_path: Path, n: int, seed: int = 0, ints: bool = False) -> list[dict[str, Any]]:
    inputs = json.loads((bundle_path / "manifest.json").read_text())["inputs"]
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for name, kind in inputs.items():
            if kind == "jagged":
                row[name] = [float(v) for v in rng.exponential(40.0, i % 5)]
            elif ints and name == "f1":
                row[name] = int(rng.integers(-3, 10))
            else:
                row[name] = float(rng.normal(0.0, 2.0))
        rows.append(row)
    return rows


def arrow_stream(columns: dict[str, list[Any]]) -> bytes:
    batch = pa.record_batch({k: pa.array(v) for k, v in columns.items()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def forms(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    keys = list(reversed(list(rows[0])))
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return {
        "rows": {"rows": rows},
        "columns": {"columns": columns},
        "keys/values": {"keys": keys, "values": [[r[k] for k in keys] for r in rows]},
        "arrow": decode(arrow_stream(columns), ARROW_STREAM),
        "big json": decode(json.dumps({"columns": columns}).encode() + b" " * 300_000),
        "tfaas one event": {"keys": keys, "values": [rows[0][k] for k in keys], "model": name},
    }


@pytest.mark.parametrize("kind", ["flat", "jagged", "multiclass", "regression"])
@pytest.mark.parametrize("ints", [False, True])
def test_every_form_matches_load_bundle(
    service: PredictionService, toy_bundles: dict[str, Path], kind: str, ints: bool
) -> None:
    rows = make_rows(toy_bundles[kind], 23, seed=len(kind), ints=ints)
    expected = load_bundle(toy_bundles[kind]).predict(rows)
    name = NAMES[kind]

    async def main() -> dict[str, dict[str, Any]]:
        return {form: await service.predict(name, p) for form, p in forms(rows, name).items()}

    replies = asyncio.run(main())
    for form, reply in replies.items():
        want = expected[:1] if form == "tfaas one event" else expected
        assert reply["model"] == name
        assert reply["version"] == 1
        np.testing.assert_allclose(np.array(reply["scores"]), want, rtol=0, atol=1e-6, err_msg=form)
        assert reply.get("classes") == (["bkg", "sig", "other"] if kind == "multiclass" else None)
    assert np.array(replies["rows"]["scores"]).shape == expected.shape


def test_flat_fast_path_equals_feature_builder(
    service: PredictionService, toy_bundles: dict[str, Path]
) -> None:
    bundle = load_bundle(toy_bundles["flat"])
    rows = make_rows(toy_bundles["flat"], 50, ints=True)
    slow = bundle.builder.matrix({k: [r[k] for r in rows] for k in rows[0]})
    for form, payload in forms(rows, "toy-flat").items():
        if form != "tfaas one event":
            np.testing.assert_allclose(service.matrix(bundle, payload), slow, rtol=1e-6, atol=1e-6)


def test_errors_name_what_is_wrong(
    service: PredictionService, toy_bundles: dict[str, Path]
) -> None:
    flat = make_rows(toy_bundles["flat"], 3)
    jagged = make_rows(toy_bundles["jagged"], 3)
    missing = [{k: v for k, v in r.items() if k not in ("f3", "f7")} for r in flat]
    bad = [dict(r) for r in flat]
    bad[1]["f3"] = "40.5"
    bad_jet = [dict(r) for r in jagged]
    bad_jet[2]["Jet_pt"] = [1.0, None]
    cases: list[tuple[str, Any, type[Exception], str]] = [
        ("toy-flat", {"rows": missing}, DataError, "missing input features: f3, f7"),
        (
            "toy-flat",
            {"rows": [{**r, "foo": 1.0} for r in flat]},
            DataError,
            "unknown features: foo",
        ),
        (
            "toy-flat",
            {"rows": bad},
            DataError,
            r"feature 'f3', row 1: expected a number, got a string",
        ),
        (
            "toy-flat",
            {"columns": {k: [r[k] for r in bad] for k in bad[0]}},
            DataError,
            "'f3', row 1",
        ),
        (
            "toy-jagged",
            {"rows": bad_jet},
            DataError,
            r"'Jet_pt', row 2: expected numbers, got null",
        ),
        (
            "toy-flat",
            {"rows": [flat[0], {**flat[0], "f0": None}]},
            DataError,
            "'f0', row 1: .* null",
        ),
        (
            "toy-flat",
            {"keys": ["f0"], "values": [[1.0, 2.0]]},
            DataError,
            "values row 0: expected 1",
        ),
        (
            "toy-flat",
            {"rows": flat, "extra": 1},
            DataError,
            r"unexpected payload fields \['extra', 'rows'\]",
        ),
        ("toy-flat", [1, 2], DataError, "must be a JSON object"),
        ("toy-flat", {"rows": "x"}, DataError, "'rows' must be a list"),
        ("toy-flat", {"columns": [1]}, DataError, "'columns' must be an object"),
        (
            "toy-flat",
            {"keys": list(flat[0]), "values": [], "model": "other"},
            DataError,
            "names model 'other'",
        ),
        (
            "toy-flat",
            {"rows": flat * 400},
            PayloadTooLarge,
            "1200 events in one request; the limit is 1000",
        ),
        ("nope", {"rows": flat}, ModelNotFound, "no model named 'nope'"),
        ("toy-flat", {"rows": [{**flat[0], "f2": 10**400}]}, DataError, "not usable as a number"),
        ("toy-jagged", {"rows": [{**jagged[0], "Jet_pt": [2**64]}]}, DataError, "not usable as"),
    ]

    async def main() -> None:
        for name, payload, error, message in cases:
            with pytest.raises(error, match=message):
                await service.predict(name, payload)
        with pytest.raises(ModelNotFound, match="has no version 7"):
            await service.predict("toy-flat", {"rows": flat}, version=7)
        assert (await service.predict("toy-flat", {"rows": []}))["scores"] == []

    asyncio.run(main())
    assert PayloadTooLarge.status == 413
    with pytest.raises(DataError, match="malformed JSON body"):
        decode(b'{"rows": [')
    with pytest.raises(DataError, match="malformed Arrow IPC stream"):
        decode(b"not arrow", ARROW_STREAM)
    with pytest.raises(DataError, match="feature 'x': Arrow type string"):
        decode(arrow_stream({"x": ["a"]}), ARROW_STREAM)
    with pytest.raises(DataError, match="feature 'x': null values"):
        decode(arrow_stream({"x": [1.0, None]}), ARROW_STREAM)


def test_concurrent_requests_share_model_calls(
    service: PredictionService, toy_bundles: dict[str, Path]
) -> None:
    rows = make_rows(toy_bundles["flat"], 60, seed=5)
    expected = load_bundle(toy_bundles["flat"]).predict(rows)
    calls: list[int] = []
    registry = service.registry

    async def main(max_batch: int) -> list[dict[str, Any]]:
        service = PredictionService(registry, max_batch=max_batch, max_delay_ms=5)
        bundle, _ = await service.bundle("toy-flat")
        original = bundle.predict_matrix

        def counting(x: Any) -> Any:
            calls.append(len(x))
            return original(x)

        bundle.predict_matrix = counting  # type: ignore[method-assign]
        try:
            # single rows, and a few requests of several rows, all at once
            payloads = [{"rows": [r]} for r in rows[:50]] + [
                {"rows": rows[i : i + 5]} for i in range(50, 60, 5)
            ]
            return list(await asyncio.gather(*(service.predict("toy-flat", p) for p in payloads)))
        finally:
            del bundle.predict_matrix

    for max_batch, most_calls in ((4096, 3), (8, 20)):
        calls.clear()
        replies = asyncio.run(main(max_batch))
        got = np.concatenate([np.array(r["scores"]) for r in replies])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        assert sum(calls) == 60
        assert len(calls) <= most_calls, calls
        assert max(calls) <= max(max_batch + 4, 5)


def test_model_failure_reaches_every_waiting_request(
    service: PredictionService, toy_bundles: dict[str, Path]
) -> None:
    rows = make_rows(toy_bundles["flat"], 4)

    async def main() -> list[Any]:
        bundle, _ = await service.bundle("toy-flat")

        def broken(x: Any) -> Any:
            raise RuntimeError("engine exploded")

        bundle.predict_matrix = broken  # type: ignore[method-assign]
        try:
            calls = (service.predict("toy-flat", {"rows": [r]}) for r in rows)
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            del bundle.predict_matrix

    results = asyncio.run(main())
    assert [str(r) for r in results] == ["engine exploded"] * 4


def test_predict_file_writes_a_friend_tree(
    service: PredictionService, toy_bundles: dict[str, Path], tmp_path: Path
) -> None:
    rows = make_rows(toy_bundles["flat"], 300)
    source = tmp_path / "events.root"
    with uproot.recreate(source) as handle:
        columns = {k: np.array([r[k] for r in rows], dtype=np.float32) for k in rows[0]}
        handle.mktree("Events", {k: np.float32 for k in columns}).extend(columns)
    out = tmp_path / "scores.root"
    reply = asyncio.run(service.predict_file("toy-flat", source, out))
    assert (reply["entries"], reply["branches"], reply["version"]) == (300, ["score"], 1)
    with uproot.open(out) as handle:
        scores = handle["Events"]["score"].array(library="np")
    np.testing.assert_allclose(
        scores, load_bundle(toy_bundles["flat"]).predict(str(source)), atol=0
    )


def test_arrow_replies() -> None:
    assert wants_arrow("application/json, application/vnd.apache.arrow.stream;q=0.9")
    assert not wants_arrow("application/json")
    assert not wants_arrow(None)
    meta = {"model": "m", "version": 2, "task": "multiclass"}
    data = encode_arrow(np.eye(3, dtype=np.float32), ["a", "b", "c"], meta)
    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    assert table.column_names == ["a", "b", "c"]
    assert json.loads(table.schema.metadata[b"version"]) == 2
    table = pa.ipc.open_stream(encode_arrow(np.zeros(4, np.float32), [], meta)).read_all()
    assert (table.column_names, table.num_rows) == (["score"], 4)
