"""Serving: bundles loaded from disk score raw events exactly as the model was trained.

The bundle of most tests is built by hand (no training layer needed): a linear model
with a sigmoid, exported to ONNX, and a layout with real statistics of the toy
dataset, computed by the streaming layer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import types
import warnings
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from mlaas_jupyter.errors import DataError, SourceError
from mlaas_jupyter.examples import write_example_dataset

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from mlaas_jupyter.inference import ModelBundle, load_bundle  # noqa: E402
from mlaas_jupyter.inference.friend import score_branches, write_friend_tree  # noqa: E402
from mlaas_jupyter.stream import BatchStream, DatasetSpec, Split  # noqa: E402
from mlaas_jupyter.stream.features import (  # noqa: E402
    FeatureBuilder,
    columns_from_keys_values,
    columns_from_rows,
)
from mlaas_jupyter.train.bundle import BUNDLE_FORMAT, _raw_inputs  # noqa: E402

EVENTS = 1500


class Toy:
    """The toy dataset, the training matrix of all its events and a hand-made bundle."""

    def __init__(self, root: Path) -> None:
        spec_path = write_example_dataset(root / "data", events_per_file=EVENTS, files_per_class=1)
        # No cuts and everything in "train": the stream's rows are the files' entries.
        # HT (a new branch) is a feature; "double_weight" is excluded, and reads a
        # branch that is not an input: serving must not need it.
        spec = DatasetSpec.from_file(spec_path)
        self.spec = spec.with_changes(
            cuts=(),
            split=Split(train=1.0, validation=0.0, test=0.0),
            exclude=(*spec.exclude, "double_weight"),
            new_branches=(*spec.new_branches, ("double_weight", "EventWeight * 2")),
        )
        stream = BatchStream(
            self.spec, "train", 256, shuffle=False, cache=root / "cache", prefetch=0
        )
        self.x = np.concatenate([batch.x for batch in stream])
        self.layout, self.plan = stream.layout, stream.plan
        self.files = [f.path for f in self.plan.files]  # background_0, signal_0
        self.bundle = root / "bundle"
        self.bundle.mkdir()
        torch.manual_seed(0)
        self.model = _Linear(self.layout.width).eval()
        _export(self.model, self.layout.width, self.bundle / "model.onnx")
        torch.save(self.model.state_dict(), self.bundle / "model.pt")
        self.manifest = self.make_manifest()
        (self.bundle / "manifest.json").write_text(json.dumps(self.manifest, indent=1))

    def make_manifest(self, **changes: Any) -> dict[str, Any]:
        manifest = {
            "bundle_format": BUNDLE_FORMAT,
            "name": "toy-linear",
            "created": "2026-01-01T00:00:00Z",
            "task": "binary",
            "classes": list(self.spec.labels),
            "tree": "Events",
            "inputs": _raw_inputs(self.plan, self.layout),
            "new_branches": [list(item) for item in self.spec.new_branches],
            "cuts": [],
            "layout": self.layout.to_dict(),
            "backend": "torch",
            "onnx": "model.onnx",
            "native": "model.pt",
            "dataset": {"seed": self.spec.seed},
            "model": {"name": "linear"},
            "training": {},
            "data_fingerprint": "",
            "metrics": {},
            "history": [],
            "versions": {},
            "notes": [],
        }
        return {**manifest, **changes}

    def reference(self, file_index: int) -> np.ndarray[Any, Any]:
        """ONNX Runtime on the training pipeline's matrix of one file's events."""
        session = ort.InferenceSession(
            str(self.bundle / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        x = self.x[file_index * EVENTS : (file_index + 1) * EVENTS]
        return np.asarray(session.run(None, {"x": x})[0])


class _Linear(torch.nn.Module):  # type: ignore[misc]
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, 1)

    def forward(self, x: Any) -> Any:
        return torch.sigmoid(self.linear(x)).squeeze(-1)


def _export(model: Any, width: int, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.export's own deprecation notices
        torch.onnx.export(
            model,
            (torch.zeros(4, width),),
            str(path),
            dynamo=True,
            input_names=["x"],
            output_names=["score"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            verbose=False,
        )


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Toy:
    return Toy(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def bundle(toy: Toy) -> ModelBundle:
    return load_bundle(toy.bundle)


def _raw(toy: Toy, file_index: int, stop: int) -> dict[str, Any]:
    with uproot.open(toy.files[file_index]) as handle:
        arrays = handle["Events"].arrays(
            list(toy.manifest["inputs"]), entry_stop=stop, library="ak"
        )
    return {name: arrays[name] for name in toy.manifest["inputs"]}


def test_bundle_attributes(toy: Toy, bundle: ModelBundle) -> None:
    assert bundle.engine == "onnxruntime"
    assert (bundle.name, bundle.task, bundle.classes) == (
        "toy-linear",
        "binary",
        ["background", "signal"],
    )
    assert set(bundle.inputs) == {
        "MET_pt",
        "MET_phi",
        "nJet",
        "Jet_pt",
        "Jet_eta",
        "Jet_mass",
        "Jet_btag",
    }
    assert bundle.inputs["Jet_pt"] == "jagged"
    assert bundle.inputs["MET_pt"] == "flat"
    assert bundle.layout.width == toy.layout.width
    assert load_bundle(toy.bundle / "manifest.json").name == "toy-linear"


@pytest.mark.parametrize("file_index", [0, 1])
def test_predict_file_matches_training_pipeline(
    toy: Toy, bundle: ModelBundle, file_index: int
) -> None:
    expected = toy.reference(file_index)
    scores = bundle.predict(toy.files[file_index], step_size=400)  # several chunks
    assert scores.shape == (EVENTS,)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    matrix = bundle.matrix(_raw(toy, file_index, EVENTS))
    np.testing.assert_allclose(
        matrix, toy.x[file_index * EVENTS : (file_index + 1) * EVENTS], atol=1e-5
    )


def test_in_memory_inputs_match_file(toy: Toy, bundle: ModelBundle) -> None:
    expected = bundle.predict(Path(toy.files[1]))[:25]
    raw = _raw(toy, 1, 25)
    as_lists = {name: value.to_list() for name, value in raw.items()}
    numpy_flat = {k: (ak.to_numpy(v) if v.ndim == 1 else v) for k, v in raw.items()}
    rows = [
        dict(zip(as_lists, values, strict=True)) for values in zip(*as_lists.values(), strict=True)
    ]
    keys = list(as_lists)
    values = [[row[k] for k in keys] for row in rows]
    for data in (raw, numpy_flat, as_lists, rows, {"keys": keys, "values": values}):
        np.testing.assert_allclose(bundle.predict(data), expected, rtol=0, atol=1e-6)
    assert columns_from_rows(rows) == as_lists
    assert columns_from_keys_values(keys, values) == as_lists
    assert bundle.predict([]).shape == (0,)
    np.testing.assert_allclose(bundle.predict_matrix(bundle.matrix(rows)), expected, atol=1e-6)


def test_missing_and_extra_features(toy: Toy, bundle: ModelBundle) -> None:
    rows = {k: [ak.to_list(v[0])] for k, v in _raw(toy, 0, 1).items()}
    lacking = {k: v for k, v in rows.items() if k not in ("MET_pt", "Jet_btag")}
    with pytest.raises(DataError, match="missing input features: ") as caught:
        bundle.predict(lacking)
    assert sorted(str(caught.value).split(" (")[0].split(": ")[1].split(", ")) == [
        "Jet_btag",
        "MET_pt",
    ]
    with pytest.raises(DataError, match="unknown features: foo, EventWeight"):
        bundle.predict({**rows, "foo": [1.0], "EventWeight": [1.0]})
    assert bundle.predict({**rows, "foo": [1.0]}, strict=False).shape == (1,)
    with pytest.raises(DataError, match="row 1: missing features MET_pt"):
        columns_from_rows([{"MET_pt": 1.0, "nJet": 2}, {"nJet": 3}])
    with pytest.raises(DataError, match=r"values row 0: expected 2 values"):
        columns_from_keys_values(["a", "b"], [[1.0]])


def test_type_errors_name_feature_and_row(toy: Toy, bundle: ModelBundle) -> None:
    good = {k: [ak.to_list(v[0]), ak.to_list(v[1])] for k, v in _raw(toy, 0, 2).items()}
    cases = [
        ("MET_pt", ["40.0", 1.0], r"feature 'MET_pt', row 0: expected a number, got a string"),
        ("MET_pt", [1.0, [1.0]], r"feature 'MET_pt', row 1: expected a number, got a list"),
        (
            "Jet_pt",
            [[50.0], 3.0],
            r"feature 'Jet_pt', row 1: expected a list of numbers, got the number",
        ),
        ("Jet_pt", [[50.0, "x"], []], r"feature 'Jet_pt', row 0: expected numbers, got a string"),
        ("nJet", [None, 1], r"feature 'nJet', row 0: expected a number, got null"),
    ]
    for name, column, message in cases:
        with pytest.raises(DataError, match=message):
            bundle.predict({**good, name: column})
    with pytest.raises(DataError, match="different lengths"):
        bundle.predict({**good, "MET_pt": [1.0]})
    with pytest.raises(DataError, match=r"shape \(n, "):
        bundle.predict_matrix(np.zeros((2, 3), dtype=np.float32))


def test_friend_tree(toy: Toy, bundle: ModelBundle, tmp_path: Path) -> None:
    out = tmp_path / "friends" / "scores.root"
    assert write_friend_tree(bundle, toy.files[0], out, step_size=500) == EVENTS
    with uproot.open(out) as handle:
        tree = handle["Events"]
        assert tree.num_entries == EVENTS
        assert tree.keys() == ["score"]
        scores = tree["score"].array(library="np")
    np.testing.assert_allclose(scores, bundle.predict(toy.files[0]), rtol=0, atol=0)
    assert [p.name for p in out.parent.iterdir()] == ["scores.root"]  # no partial file left
    with pytest.raises(DataError, match="overwrite"):
        write_friend_tree(bundle, toy.files[0], toy.files[0])


def test_bad_bundles_give_clear_errors(toy: Toy, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such bundle"):
        load_bundle(tmp_path / "nowhere")
    with pytest.raises(SourceError, match=r"no manifest\.json"):
        load_bundle(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(toy.bundle, copy)
    manifest = copy / "manifest.json"
    manifest.write_text('{"bundle_format": 1, "name": ')
    with pytest.raises(SourceError, match=r"copy/manifest.json: corrupted manifest"):
        load_bundle(copy)
    manifest.write_text(json.dumps(toy.make_manifest(bundle_format=BUNDLE_FORMAT + 1)))
    with pytest.raises(SourceError, match="newer than this mlaas-jupyter"):
        load_bundle(copy)
    manifest.write_text(json.dumps({k: v for k, v in toy.manifest.items() if k != "layout"}))
    with pytest.raises(SourceError, match="corrupted manifest: no layout"):
        load_bundle(copy)
    manifest.write_text(json.dumps(toy.make_manifest(onnx="missing.onnx")))
    with pytest.raises(SourceError, match=r"missing\.onnx"):
        load_bundle(copy)
    manifest.write_text(json.dumps(toy.make_manifest(onnx=None, native=None)))
    with pytest.raises(SourceError, match="no native model file"):
        load_bundle(copy)


def _fake_backend(weights: np.ndarray[Any, Any], calls: list[int]) -> types.ModuleType:
    """A stand-in backend module whose load_native computes softmax(x @ weights)."""
    module = types.ModuleType("fake_backend")

    def load_native(directory: Path, fields: dict[str, Any], context: Any) -> Any:
        assert (directory / fields["native"]).is_file()
        assert context.idim == weights.shape[0]

        def predict(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            calls.append(len(x))
            z = np.exp(x.astype(np.float64) @ weights)
            return z / z.sum(axis=1, keepdims=True)

        return predict

    module.load_native = load_native  # type: ignore[attr-defined]
    return module


def test_native_engine_multiclass(
    toy: Toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = np.random.default_rng(3).normal(0.0, 0.3, (toy.layout.width, 3))
    calls: list[int] = []
    monkeypatch.setitem(
        sys.modules, "mlaas_jupyter.train.torch_backend", _fake_backend(weights, calls)
    )
    copy = tmp_path / "multi"
    shutil.copytree(toy.bundle, copy)
    classes = ["bkg", "ttH (bb)", "tt+jets"]
    (copy / "manifest.json").write_text(
        json.dumps(toy.make_manifest(task="multiclass", classes=classes, onnx=None))
    )
    bundle = load_bundle(copy)
    assert bundle.engine == "native"
    expected = np.exp(toy.x[EVENTS:].astype(np.float64) @ weights)
    expected /= expected.sum(axis=1, keepdims=True)
    scores = bundle.predict(toy.files[1])
    assert scores.shape == (EVENTS, 3)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    results: dict[int, np.ndarray[Any, Any]] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.update({i: bundle.predict_matrix(toy.x[:100])}))
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(results[i], results[0]) for i in range(4))
    names = score_branches(bundle)
    assert names == ["score_bkg", "score_ttH__bb_", "score_tt_jets"]
    out = tmp_path / "multi.root"
    assert write_friend_tree(bundle, toy.files[1], out) == EVENTS
    with uproot.open(out) as handle:
        written = handle["Events"].arrays(names, library="np")
    np.testing.assert_allclose(np.stack([written[n] for n in names], axis=1), scores, atol=1e-6)


def test_cli_predict(toy: Toy, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlaas_jupyter.cli import predict

    parser = argparse.ArgumentParser()
    predict.add_parser(parser)
    out = tmp_path / "cli.root"
    assert predict.run(parser.parse_args([str(toy.bundle), toy.files[0], "--out", str(out)])) == 0
    assert f"scored {EVENTS} entries" in capsys.readouterr().out
    with uproot.open(out) as handle:
        assert handle["Events"].num_entries == EVENTS
    args = parser.parse_args(
        [str(toy.bundle), toy.files[0], "--tree", "Events", "--json", "--limit", "7"]
    )
    assert predict.run(args) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert (document["entries"], document["scored"], document["tree"]) == (EVENTS, 7, "Events")
    np.testing.assert_allclose(document["scores"], toy.reference(0)[:7], atol=1e-6)
    assert "first 7 of" in captured.err
    with pytest.raises(SystemExit):  # one of --out and --json
        parser.parse_args([str(toy.bundle), toy.files[0], "--out", str(out), "--json"])
    # no --out: scores/<stem>_<prefix>.root beside the input, marked as a friend tree
    assert predict.run(parser.parse_args([str(toy.bundle), toy.files[0], "--prefix", "nn"])) == 0
    beside = Path(toy.files[0]).parent / "scores" / f"{Path(toy.files[0]).stem}_nn.root"
    assert f"wrote {beside} (branches nn)" in capsys.readouterr().out
    with uproot.open(beside) as handle:
        assert handle["Events"].num_entries == EVENTS
        mark = json.loads(str(handle["mlaas_friend"]))
    assert (mark["source"], mark["tree"], mark["branches"]) == (toy.files[0], "Events", ["nn"])


def test_feature_builder_from_manifest(toy: Toy) -> None:
    builder = FeatureBuilder.from_manifest(toy.manifest)
    assert [name for name, _ in builder.new_branches] == ["HT"]  # not double_weight
    assert "HT" in builder.layout.inputs
    assert "EventWeight" not in builder.inputs
    matrix = builder.matrix(_raw(toy, 0, 10))
    assert matrix.dtype == np.float32
    assert matrix.shape == (10, toy.layout.width)
    np.testing.assert_allclose(matrix, toy.x[:10], atol=1e-5)


@pytest.mark.slow
def test_trained_bundle_matches_backend(
    toy: Toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A torch MLP trained by the runner: its bundle scores files as the live backend does."""
    from mlaas_jupyter.specs.training import TrainSpec
    from mlaas_jupyter.stream import compute_stats
    from mlaas_jupyter.train import runner

    backends: list[Any] = []

    def capture(*args: Any) -> Any:
        backends.append(make_backend(*args))
        return backends[-1]

    make_backend = runner.make_backend
    monkeypatch.setattr(runner, "make_backend", capture)
    spec_path = toy.files[0].rsplit("/", 1)[0] + "/dataset.yaml"
    dataset = {**yaml.safe_load(Path(spec_path).read_text()), "cuts": []}
    spec = TrainSpec.from_dict(
        {
            "dataset": dataset,
            "model": {"name": "mlp", "params": {"sizes": [16]}},
            "training": {"epochs": 2, "batch_size": 256, "output": str(tmp_path), "device": "cpu"},
        },
        base_dir=Path(spec_path).parent,
    )
    result = runner.train(spec, cache=tmp_path / "cache")
    # the training pipeline's matrix of every event, in file order
    stats = compute_stats(spec.dataset, cache=tmp_path / "cache")
    everything = spec.dataset.with_changes(split=Split(train=1.0, validation=0.0, test=0.0))
    stream = BatchStream(everything, "train", 512, shuffle=False, stats=stats, prefetch=0)
    x = np.concatenate([batch.x for batch in stream])
    expected = backends[-1].predict(x[EVENTS:])
    for engine in ("auto", "native"):
        bundle = load_bundle(result.bundle, engine=engine)
        assert bundle.layout == stream.layout
        np.testing.assert_allclose(bundle.predict(toy.files[1]), expected, rtol=0, atol=1e-5)
    assert load_bundle(result.bundle).engine == "onnxruntime"
