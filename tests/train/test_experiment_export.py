"""The experiment exports of a bundle: ``preprocess.json``, ``model_preprocessed.onnx``
and ``model_raw.onnx`` (CMSSW and Athena), checked at export and run here without
mlaas-jupyter on raw values read with uproot."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
import yaml

from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.inference.bundle import load_bundle
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.stream.layout import FeatureLayout
from mlaas_jupyter.train import _raw_graph
from mlaas_jupyter.train._preprocess_json import groups_from_matrix, input_groups
from mlaas_jupyter.train.runner import train

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

EVENTS = 1000
VAR_INFO = ["median", "norm_factor", "replace_inf_value", "lower_bound", "upper_bound", "pad"]
JETS = ["Jet_pt", "Jet_eta", "Jet_mass", "Jet_btag"]
RAW_NAMES = ["MET_pt", "MET_phi", "nJet", *JETS, "HT", "Jet_phi", "Jet.count"]
#: jets sorted by phi (not a model input: an input of model_raw all the same), three
#: kept: sorting, clipping, padding and the mask all matter
JAGGED = {"Jet_*": {"length": 3, "sort_by": "Jet_phi", "descending": False, "pad_value": -1.5}}

#: what a CMSSW/Athena user would run: onnxruntime, uproot and numpy, no mlaas_jupyter
RAW_SCRIPT = r"""
import json, sys
import numpy as np, onnxruntime, uproot
bundle, path, out = sys.argv[1:4]
session = onnxruntime.InferenceSession(bundle + "/model_raw.onnx",
                                       providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
inputs = json.loads(meta["inputs"])
new = dict(json.loads(meta["new_branches"]))
tree = uproot.open(path)["Events"]
read = sorted({i["name"] for i in inputs if i["kind"] in ("flat", "jagged")} - set(new))
arrays = tree.arrays(read + (["Jet_pt"] if "Jet_pt" not in read else []), library="np")
n = tree.num_entries
feeds = {}
for i in inputs:
    if i["kind"] == "jagged":
        lists = arrays[i["name"]]
        counts = np.array([len(v) for v in lists], dtype=np.int64)
        dense = np.zeros((n, max(1, int(counts.max()))), dtype=np.float32)
        for row, values in enumerate(lists):
            dense[row, : len(values)] = values
        feeds[i["name"]] = dense
        feeds[i["collection"] + ".count"] = counts
    elif i["kind"] == "flat" and i["name"] not in new:
        feeds[i["name"]] = arrays[i["name"]].astype(np.float32)
assert new == {"HT": "sum(Jet_pt)"}, new
# float32, one jet after the other: as the training evaluated sum(Jet_pt) on Float_t
feeds["HT"] = np.array([np.cumsum(v, dtype=np.float32)[-1] if len(v) else 0
                        for v in arrays["Jet_pt"]], dtype=np.float32)
np.save(out, session.run(["score"], feeds)[0])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("mlaas"))))
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("experiments")
    spec = yaml.safe_load(
        write_example_dataset(folder, events_per_file=EVENTS, files_per_class=1).read_text()
    )
    spec["jagged"] = JAGGED
    return folder, spec


def _train(data: tuple[Path, dict[str, Any]], model: dict[str, Any], out: Path) -> Path:
    folder, dataset = data
    spec = TrainSpec.from_dict(
        {
            "dataset": dataset,
            "model": model,
            "training": {"epochs": 1, "batch_size": 256, "device": "cpu", "output": str(out)},
        },
        folder,
    )
    return train(spec, cache=folder / "cache").bundle


@pytest.fixture(scope="module")
def bundles(
    data: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runs")
    return {
        "torch": _train(data, {"name": "mlp"}, out),
        "bdt": _train(data, {"name": "bdt"}, out),
        "keras": _train(data, {"name": "mlp", "backend": "keras"}, out),
    }


def _manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["torch", "bdt", "keras"])
def test_raw_model_scores_a_file_without_mlaas(
    kind: str, bundles: dict[str, Path], data: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    bundle = bundles[kind]
    exports = _manifest(bundle)["exports"]
    assert "error" not in exports, exports
    assert exports["checked_events"] > 100
    assert set(exports["max_abs_diff"]) == {"model", "model_preprocessed", "model_raw"}
    assert max(exports["max_abs_diff"].values()) <= 1e-4
    path = str(data[0] / "signal_0.root")
    out = tmp_path / "scores.npy"
    run = subprocess.run(
        [sys.executable, "-c", RAW_SCRIPT, str(bundle), path, str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []  # never imported
    expected = load_bundle(bundle).predict(path)
    got = np.load(out)
    assert got.shape == expected.shape == (EVENTS,)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_preprocess_json_and_preprocessed_model(
    bundles: dict[str, Path], data: tuple[Path, dict[str, Any]]
) -> None:
    bundle = bundles["torch"]
    manifest = _manifest(bundle)
    layout = FeatureLayout.from_dict(manifest["layout"])
    pre = json.loads((bundle / "preprocess.json").read_text())
    assert pre["output_names"] == ["signal"]
    assert pre["input_names"] == ["flat_features", "Jet_features", "Jet_mask"]
    assert pre["flat_features"]["var_names"] == ["MET_pt", "MET_phi", "nJet", "HT"]
    assert pre["flat_features"]["var_length"] == 1
    jets = pre["Jet_features"]
    assert jets["var_names"] == ["Jet_pt", "Jet_eta", "Jet_mass", "Jet_btag"]
    assert (jets["var_length"], jets["sort_by"], jets["descending"]) == (3, "Jet_phi", False)
    info = jets["var_infos"]["Jet_pt"]
    assert sorted(info) == sorted(VAR_INFO)
    feature = layout.feature("Jet_pt")
    assert (info["median"], info["norm_factor"], info["pad"]) == (
        feature.shift,
        feature.scale,
        -1.5,
    )
    assert pre["Jet_mask"]["var_names"] == ["Jet.mask"]
    assert pre["Jet_mask"]["var_infos"]["Jet.mask"]["pad"] == 0

    # model_preprocessed.onnx on the groups holding the model matrix's columns
    loaded = load_bundle(bundle)
    path = str(data[0] / "background_0.root")
    x = np.concatenate(
        [
            loaded.builder.matrix(c.columns, strict=False)
            for c in loaded.open_source(path).iterate(list(loaded.inputs), "64 MB")
        ]
    )
    groups = groups_from_matrix(layout, input_groups(layout), x)
    assert groups["Jet_features"].shape == (EVENTS, 4, 3)
    session = onnxruntime.InferenceSession(
        str(bundle / "model_preprocessed.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        ("flat_features", ["n", 4, 1]),
        ("Jet_features", ["n", 4, 3]),
        ("Jet_mask", ["n", 1, 3]),
    ]
    got = session.run(["score"], groups)[0]
    np.testing.assert_allclose(got, loaded.predict(path), rtol=0, atol=1e-4)


@pytest.mark.slow
def test_raw_model_metadata(bundles: dict[str, Path]) -> None:
    model = onnx.load(str(bundles["bdt"] / "model_raw.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["variables"]) == RAW_NAMES
    assert json.loads(meta["kinds"])[-3:] == ["flat", "jagged", "count"]
    assert [i.name for i in model.graph.input] == json.loads(meta["variables"])
    assert json.loads(meta["classes"]) == ["background", "signal"]
    assert json.loads(meta["outputs"]) == ["signal"]
    assert meta["task"] == "binary"
    assert json.loads(meta["new_branches"]) == [["HT", "sum(Jet_pt)"]]
    assert meta["version"]
    assert json.loads(meta["fold"]) is None


@pytest.mark.slow
def test_one_raw_model_picks_each_events_fold(
    bundles: dict[str, Path], data: tuple[Path, dict[str, Any]]
) -> None:
    """Two models (the MLP and the BDT, same layout) as folds: event i gets model i % 2."""
    first, second = (load_bundle(bundles[k]) for k in ("torch", "bdt"))
    inners = [onnx.load(str(bundles[k] / "model.onnx")) for k in ("torch", "bdt")]
    model = _raw_graph.raw_model(inners, first.layout, fold_key="entry")
    assert model.graph.input[-1].name == "entry"
    path = str(data[0] / "signal_0.root")
    feeds = _raw_feeds(first, path)
    feeds["entry"] = np.arange(EVENTS, dtype=np.int64) + 7
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    got = session.run(["score"], feeds)[0]
    expected = np.where(feeds["entry"] % 2 == 0, first.predict(path), second.predict(path))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def _raw_feeds(bundle: Any, path: str) -> dict[str, np.ndarray[Any, Any]]:
    import awkward as ak
    import uproot

    arrays = uproot.open(path)["Events"].arrays(library="ak")
    feeds: dict[str, np.ndarray[Any, Any]] = {}
    for i in _raw_graph.raw_inputs(bundle.layout):
        if i.kind == "jagged":
            values = arrays[i.name]
            width = max(1, int(ak.max(ak.num(values))))
            padded = ak.fill_none(ak.pad_none(values, width, clip=True), 0.0)
            feeds[i.name] = ak.to_numpy(padded).astype(np.float32)
            feeds[f"{i.collection}.count"] = ak.to_numpy(ak.num(values)).astype(np.int64)
        elif i.name == "HT":
            feeds["HT"] = ak.to_numpy(ak.sum(arrays["Jet_pt"], axis=1)).astype(np.float32)
        elif i.kind == "flat":
            feeds[i.name] = ak.to_numpy(arrays[i.name]).astype(np.float32)
    return feeds


@pytest.mark.slow
def test_a_failing_check_keeps_no_exports_and_names_the_event(
    data: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = _raw_graph.raw_model

    def shifted(inners: Any, layout: FeatureLayout, *args: Any) -> Any:
        """A raw graph whose MET_pt normalisation is off (failure injection)."""
        met = layout.feature("MET_pt")
        wrong = FeatureLayout(
            tuple(
                f if f is not met else dataclasses.replace(f, shift=f.shift + 50.0)
                for f in layout.features
            ),
            layout.normalisation,
        )
        return build(inners, wrong, *args)

    monkeypatch.setattr(_raw_graph, "raw_model", shifted)
    bundle = _train(data, {"name": "bdt"}, tmp_path)  # the training job succeeds
    exports = _manifest(bundle)["exports"]
    assert exports["max_abs_diff"]["model_raw"] > 1e-4
    assert exports["max_abs_diff"]["model"] <= 1e-4
    event = exports["event"]
    assert event["model"] == "model_raw"
    assert event["file"].endswith(".root")
    assert isinstance(event["entry"], int)
    assert f"{event['file']} entry {event['entry']}" in exports["error"]
    assert "preprocess" not in exports
    assert "model_raw" not in exports
    for name in ("preprocess.json", "model_preprocessed.onnx", "model_raw.onnx"):
        assert not (bundle / name).exists()
    assert (bundle / "model.onnx").is_file()
    assert load_bundle(bundle).predict(str(data[0] / "signal_0.root")).shape == (EVENTS,)


@pytest.mark.slow
def test_a_k_fold_bundle_has_one_raw_model_picking_each_events_fold(
    data: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, dataset = data
    spec = TrainSpec.from_dict(
        {
            "dataset": dataset,
            "model": {"name": "bdt"},
            "training": {"device": "cpu", "output": str(tmp_path), "folds": 2},
        },
        folder,
    )
    bundle = train(spec, cache=folder / "cache").bundle
    exports = _manifest(bundle)["exports"]
    assert "error" not in exports, exports
    assert exports["fold"] == {"k": 2, "by": None, "input": "entry"}
    assert exports["per_fold"] == ["fold0/preprocess.json", "fold1/preprocess.json"]
    assert exports["checked_events"] > 100
    assert exports["max_abs_diff"]["model_raw"] <= 1e-4
    loaded = load_bundle(bundle)
    path = str(folder / "signal_0.root")
    feeds = _raw_feeds(loaded, path)
    feeds["entry"] = np.arange(EVENTS, dtype=np.int64)
    session = onnxruntime.InferenceSession(
        str(bundle / "model_raw.onnx"), providers=["CPUExecutionProvider"]
    )
    assert session.get_inputs()[-1].name == "entry"
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["fold"]) == exports["fold"]
    got = session.run(["score"], feeds)[0]
    np.testing.assert_allclose(got, loaded.predict(path), rtol=0, atol=1e-4)


def _identity(width: int) -> Any:
    """An inner model whose score is its input matrix: the raw graph's matrix shows."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", width])
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n", width])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["score"])], "id", [x], [score])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("descending", [True, False])
def test_raw_graph_fills_as_the_layout_does(descending: bool) -> None:
    """Ties keep their order, NaN keys go last, lists are clipped and padded, masks."""
    from mlaas_jupyter.stream.jagged import JaggedParts
    from mlaas_jupyter.stream.layout import Feature

    layout = FeatureLayout(
        (
            Feature("a", "flat", 0, 1, shift=1.0, scale=2.0),
            Feature("v", "jagged", 1, 3, 0.5, 4.0, -9.0, "k", descending, group="g"),
            Feature("k", "jagged", 4, 3, 0.0, 1.0, 7.0, "k", descending, group="g"),
            Feature("g.mask", "mask", 7, 3, mask_of=("v", "k")),
        )
    )
    keys = [[1.0, 2.0, 2.0, 0.0], [], [5.0], [3.0, np.nan, 3.0, 3.0, -1.0], [np.nan, 1.0]]
    counts = np.array([len(k) for k in keys], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    k_content = np.array([v for k in keys for v in k], dtype=np.float32)
    v_content = np.arange(len(k_content), dtype=np.float32) * 1.5
    a = np.array([0.5, 1.0, -2.0, 3.0, 4.0], dtype=np.float32)
    jagged = {
        "v": JaggedParts(starts, counts, v_content),
        "k": JaggedParts(starts, counts, k_content),
    }
    expected = layout.fill({"a": a}, jagged, np.arange(len(a)))
    width = int(counts.max()) + 2  # the caller's padding: any L >= the counts
    dense = {name: np.full((len(a), width), 99.0, np.float32) for name in ("v", "k")}
    for name, parts in jagged.items():
        for i in range(len(a)):
            dense[name][i, : counts[i]] = parts.content[starts[i] : starts[i] + counts[i]]
    model = _raw_graph.raw_model([_identity(layout.width)], layout)
    assert [i.name for i in model.graph.input] == ["a", "v", "k", "v.count"]
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    got = session.run(["score"], {"a": a, **dense, "v.count": counts})[0]
    np.testing.assert_array_equal(got, expected)


def test_raw_graph_without_sorting_or_mask_and_a_fixed_array() -> None:
    from mlaas_jupyter.stream.jagged import JaggedParts
    from mlaas_jupyter.stream.layout import Feature

    layout = FeatureLayout(
        (
            Feature("w", "fixed", 0, 2, shift=1.0, scale=0.5),
            Feature("Mu_pt", "jagged", 2, 2, 10.0, 0.1, 3.0, group="m"),
        )
    )
    counts = np.array([0, 1, 3, 2], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    content = np.arange(int(counts.sum()), dtype=np.float32) + 5.0
    fixed = np.arange(8, dtype=np.float32).reshape(4, 2)
    parts = JaggedParts(starts, counts, content)
    expected = layout.fill({"w": fixed}, {"Mu_pt": parts}, np.arange(4))
    dense = np.zeros((4, 3), np.float32)
    for i in range(4):
        dense[i, : counts[i]] = content[starts[i] : starts[i] + counts[i]]
    model = _raw_graph.raw_model([_identity(layout.width)], layout)
    assert [(i.name, i.kind) for i in _raw_graph.raw_inputs(layout)] == [
        ("w", "fixed"),
        ("Mu_pt", "jagged"),
        ("Mu_pt.count", "count"),
    ]
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    got = session.run(["score"], {"w": fixed, "Mu_pt": dense, "Mu_pt.count": counts})[0]
    np.testing.assert_array_equal(got, expected)
