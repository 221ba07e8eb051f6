"""The bundle of a k-fold run: every fold's model loaded, and each event scored by the
model that did not see it (files: the fold_by branch or the entry number; rows: the
fold_by key, else the mean of the models), through ``predict``, friend trees, the
registry and ``mlaas predict``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
from fold_data import FoldRun, fold_run

from mlaas_jupyter.cli import main
from mlaas_jupyter.errors import DataError
from mlaas_jupyter.inference.bundle import load_bundle
from mlaas_jupyter.inference.friend import write_friend_tree
from mlaas_jupyter.inference.registry import ModelRegistry

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

pytestmark = pytest.mark.slow  # the run they share trains two models (about a minute)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FoldRun:
    return fold_run(tmp_path_factory)


def _branch(path: str, name: str) -> np.ndarray[Any, Any]:
    with uproot.open(path) as handle:
        return np.asarray(handle["Events"][name].array(library="np"))


def _rows(path: str, n: int, with_event: bool) -> list[dict[str, Any]]:
    met = _branch(path, "MET_pt")[:n]
    phi = _branch(path, "MET_phi")[:n]
    event = _branch(path, "event")[:n]
    rows: list[dict[str, Any]] = [
        {"MET_pt": float(a), "MET_phi": float(b)} for a, b in zip(met, phi, strict=True)
    ]
    if with_event:
        for row, value in zip(rows, event, strict=True):
            row["event"] = int(value)
    return rows


@pytest.mark.parametrize("engine", ["auto", "native"])
def test_a_file_is_scored_out_of_fold(run: FoldRun, engine: str) -> None:
    bundle = load_bundle(run.result.bundle, engine)
    assert bundle.folds == (2, "event")
    assert bundle.engine == ("onnxruntime" if engine == "auto" else "native")
    models = [load_bundle(run.result.bundle / f"fold{i}", engine) for i in (0, 1)]
    for path in run.files:
        scores = bundle.predict(path)
        event = _branch(path, "event")
        odd = event % 2 == 1
        assert odd.any()
        assert (~odd).any()
        np.testing.assert_allclose(scores[~odd], models[0].predict(path)[~odd], rtol=1e-6)
        np.testing.assert_allclose(scores[odd], models[1].predict(path)[odd], rtol=1e-6)
        assert not np.allclose(models[0].predict(path), models[1].predict(path))


def test_the_out_of_fold_scores_are_those_of_the_run(run: FoldRun) -> None:
    # every event scored by the model that did not train on it: the run's test metrics
    bundle = load_bundle(run.result.bundle)
    y = np.concatenate([np.full(1500, k) for k in (0, 1)])
    scores = np.concatenate([bundle.predict(path) for path in run.files])
    from mlaas_jupyter.train.metrics import evaluate_scores

    w = np.concatenate([_branch(p, "weight") * 0 + 1 for p in run.files])
    auc = evaluate_scores("binary", y, scores, w, labels=("background", "signal"))["auc"]
    assert auc == pytest.approx(run.result.metrics["auc"], abs=1e-5)


def test_rows_pick_by_the_key_else_take_the_mean(run: FoldRun) -> None:
    bundle = load_bundle(run.result.bundle)
    models = [load_bundle(run.result.bundle / f"fold{i}") for i in (0, 1)]
    path = run.files[1]
    plain = _rows(path, 40, with_event=False)
    mean = (models[0].predict(plain) + models[1].predict(plain)) / 2
    np.testing.assert_allclose(bundle.predict(plain), mean, rtol=1e-6)
    keyed = _rows(path, 40, with_event=True)
    odd = np.array([row["event"] % 2 == 1 for row in keyed])
    picked = np.where(odd, models[1].predict(plain), models[0].predict(plain))
    np.testing.assert_allclose(bundle.predict(keyed), picked, rtol=1e-6)
    columns = {k: [row[k] for row in keyed] for k in keyed[0]}
    np.testing.assert_allclose(bundle.predict(columns), picked, rtol=1e-6)
    keys = list(keyed[0])
    values = [[row[k] for k in keys] for row in keyed]
    np.testing.assert_allclose(bundle.predict({"keys": keys, "values": values}), picked, rtol=1e-6)
    assert bundle.predict([]).shape == (0,)
    with pytest.raises(DataError, match=r"'event' picks the fold"):
        bundle.predict({**columns, "event": [0.5] * len(keyed)})
    with pytest.raises(DataError, match="NOPE"):  # an unknown feature, as for any model
        bundle.predict([{**plain[0], "NOPE": 1.0}])


def test_a_file_without_the_fold_branch(run: FoldRun, tmp_path: Path) -> None:
    path = tmp_path / "no_event.root"
    with uproot.recreate(path) as handle:
        handle["Events"] = {"MET_pt": np.ones(5, np.float32), "MET_phi": np.ones(5, np.float32)}
    bundle = load_bundle(run.result.bundle)
    with pytest.raises(DataError, match=r"no_event\.root: tree 'Events' has no branch 'event'"):
        bundle.predict(str(path))


def test_folds_by_entry_number(run: FoldRun, tmp_path: Path) -> None:
    # the same models, as if the run had no fold_by: the entry number picks the model
    folder = tmp_path / "by-entry"
    shutil.copytree(run.result.bundle, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["folds"]["by"] = None
    (folder / "manifest.json").write_text(json.dumps(manifest))
    bundle = load_bundle(folder)
    assert bundle.folds == (2, None)
    models = [load_bundle(folder / f"fold{i}") for i in (0, 1)]
    path = run.files[0]
    scores = bundle.predict(path, step_size=100)  # chunks of 100 entries: numbers go on
    odd = np.arange(len(scores)) % 2 == 1
    np.testing.assert_allclose(scores[~odd], models[0].predict(path)[~odd], rtol=1e-6)
    np.testing.assert_allclose(scores[odd], models[1].predict(path)[odd], rtol=1e-6)
    rows = _rows(path, 10, with_event=True)  # no fold key: "event" is just unknown here
    with pytest.raises(DataError, match="event"):
        bundle.predict(rows)


def test_friend_tree_registry_and_cli(
    run: FoldRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = load_bundle(run.result.bundle)
    path = run.files[1]
    expected = bundle.predict(path)
    out = tmp_path / "friend.root"
    write_friend_tree(bundle, path, out)
    with uproot.open(out) as handle:
        tree = handle[handle.keys(cycle=False)[0]]
        np.testing.assert_allclose(tree["score"].array(library="np"), expected, rtol=1e-6)
    registry = ModelRegistry(tmp_path / "models")
    info = registry.register(run.result.bundle, "folded")
    assert info.version == 1
    served = registry.get("folded")
    assert served.folds == (2, "event")
    np.testing.assert_allclose(served.predict(path), expected, rtol=1e-6)
    assert main(["predict", str(run.result.bundle), path, "--json", "--limit", "7"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["scored"] == 7
    np.testing.assert_allclose(printed["scores"], expected[:7], rtol=1e-5)
