"""Hand-made model bundles (manifest + ONNX MLP, no training) for the serving tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EXAMPLE_INPUTS", "write_example_bundle", "write_toy_bundle"]

#: flat inputs of the toy bundle renamed to branches of the example dataset
EXAMPLE_INPUTS = {"f0": "MET_pt", "f1": "MET_phi", "f2": "nJet"}


def write_example_bundle(folder: Path) -> Path:
    """A small real bundle (ONNX MLP) reading the example dataset: MET_pt, MET_phi, nJet
    (an integer branch), Jet_pt (jagged: 3 leading jets with a mask) and HT = sum(Jet_pt)."""
    write_toy_bundle(folder, name="toy-example", n_flat=3, jagged=True, seed=4)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["inputs"] = {EXAMPLE_INPUTS.get(k, k): v for k, v in manifest["inputs"].items()}
    for feature in manifest["layout"]["features"]:
        feature["name"] = EXAMPLE_INPUTS.get(feature["name"], feature["name"])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def write_toy_bundle(
    folder: str | Path,
    *,
    name: str = "toy-flat",
    task: str = "binary",
    n_flat: int = 28,
    jagged: bool = False,
    classes: tuple[str, ...] = ("bkg", "sig", "other"),
    hidden: int = 16,
    seed: int = 0,
) -> dict[str, Any]:
    """Write a bundle folder (manifest + ONNX MLP, no training) and return its manifest.

    Inputs are ``n_flat`` flat features ``f0, f1, ...`` (standardised with made-up
    constants); with ``jagged`` also ``Jet_pt`` (3 leading jets, sorted, padded, with a
    mask) and the new branch ``HT = sum(Jet_pt)``. ``task`` is binary (P(signal)),
    multiclass (softmax over ``classes``) or regression.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from mlaas_jupyter.train.bundle import BUNDLE_FORMAT

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    flat = [f"f{i}" for i in range(n_flat)]
    features: list[dict[str, Any]] = []

    def add(name: str, kind: str, width: int = 1, **extra: Any) -> None:
        offset = sum(f["width"] for f in features)
        features.append(
            {
                "name": name,
                "kind": kind,
                "offset": offset,
                "width": width,
                "shift": 0.0,
                "scale": 1.0,
                "pad_value": 0.0,
                "sort_by": None,
                "descending": True,
                "mask_of": [],
                "group": "",
                **extra,
            }
        )

    for index, feature in enumerate(flat):
        add(feature, "flat", shift=float(index) * 0.5, scale=1.0 / (1.0 + index % 3))
    inputs = dict.fromkeys(flat, "flat")
    new_branches: list[list[str]] = []
    if jagged:
        inputs["Jet_pt"] = "jagged"
        new_branches = [["HT", "sum(Jet_pt)"]]
        add("HT", "flat", shift=60.0, scale=0.01)
        add("Jet_pt", "jagged", 3, shift=30.0, scale=0.02, pad_value=-1.0, sort_by="Jet_pt")
        add("Jet.mask", "mask", 3, mask_of=["Jet_pt"])
    width = sum(f["width"] for f in features)
    outputs = {"binary": 1, "regression": 1, "multiclass": len(classes)}[task]
    weights = {
        "w1": rng.normal(0, 0.3, (width, hidden)).astype(np.float32),
        "b1": rng.normal(0, 0.1, hidden).astype(np.float32),
        "w2": rng.normal(0, 0.3, (hidden, outputs)).astype(np.float32),
        "b2": rng.normal(0, 0.1, outputs).astype(np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["z0"]),
        helper.make_node("Add", ["z0", "b2"], ["z"]),
    ]
    if task == "multiclass":
        nodes.append(helper.make_node("Softmax", ["z"], ["score"], axis=1))
        shape: list[Any] = ["n", outputs]
    else:
        weights["flat_shape"] = np.array([-1], dtype=np.int64)
        last = "z"
        if task == "binary":
            nodes.append(helper.make_node("Sigmoid", ["z"], ["p"]))
            last = "p"
        nodes.append(helper.make_node("Reshape", [last, "flat_shape"], ["score"]))
        shape = ["n"]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", width])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    manifest = {
        "bundle_format": BUNDLE_FORMAT,
        "name": name,
        "created": "2026-01-01T00:00:00Z",
        "task": task,
        "classes": list(classes)
        if task == "multiclass"
        else (["background", "signal"] if task == "binary" else []),
        "tree": "Events",
        "inputs": inputs,
        "new_branches": new_branches,
        "cuts": [],
        "layout": {"normalisation": "standard", "width": width, "features": features},
        "backend": "torch",
        "onnx": "model.onnx",
        "native": "model.pt",
        "dataset": {"seed": seed},
        "model": {"name": "mlp"},
        "training": {},
        "data_fingerprint": "",
        "metrics": {"test": {"auc": 0.75}},
        "history": [],
        "versions": {},
        "notes": [],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
