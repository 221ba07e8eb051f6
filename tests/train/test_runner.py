"""End to end through :func:`mlaas_jupyter.train.runner.train` and ``mlaas train``.

Every test trains on small toy files (a few thousand events, one file per class) and
checks what a user gets: the events in order, the metrics, the bundle and its manifest,
the plots, and that the bundle scores a ROOT file exactly as the trained model does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from mlaas_jupyter.cli import main
from mlaas_jupyter.errors import DataError, TrainingError
from mlaas_jupyter.examples import make_events, write_example_dataset
from mlaas_jupyter.inference.bundle import load_bundle
from mlaas_jupyter.specs.dataset import Split
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.stream.batches import BatchStream
from mlaas_jupyter.stream.stats import compute_stats
from mlaas_jupyter.train import runner
from mlaas_jupyter.train.bundle import BUNDLE_FORMAT
from mlaas_jupyter.train.metrics import evaluate_scores
from mlaas_jupyter.train.runner import TrainResult, train

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

EVENTS = 2500  # per file, one file per class
TRAINING: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 256,
    "learning_rate": 3e-3,
    "device": "cpu",
    "early_stopping": None,
}
MANIFEST_FIELDS = {
    "bundle_format",
    "name",
    "created",
    "task",
    "classes",
    "tree",
    "inputs",
    "new_branches",
    "cuts",
    "layout",
    "backend",
    "onnx",
    "native",
    "format",
    "dataset",
    "model",
    "training",
    "data_fingerprint",
    "events",
    "metrics",
    "history",
    "versions",
    "notes",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIMING = ("events_per_s", "seconds")


@dataclass
class Toy:
    """The toy dataset (background, signal and a third class) written once per module."""

    folder: Path
    dataset: dict[str, Any]  # dataset.yaml of write_example_dataset, as a mapping

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    def file(self, name: str) -> str:
        return str(self.folder / f"{name}_0.root")

    def spec(
        self,
        tmp_path: Path,
        model: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        **dataset: Any,
    ) -> TrainSpec:
        """A training spec; ``dataset`` keys replace those of the toy's dataset.yaml."""
        data = {k: v for k, v in {**self.dataset, **dataset}.items() if v is not None}
        return TrainSpec.from_dict(
            {
                "dataset": data,
                "model": model or {"name": "mlp"},
                "training": {**TRAINING, "output": str(tmp_path), **(training or {})},
            },
            self.folder,
        )


def _write_tree(path: Path, events: dict[str, Any]) -> None:
    with uproot.recreate(path, compression=uproot.ZLIB(1)) as handle:
        types = {k: v.type.content if k in ("Jet", "Muon") else v.dtype for k, v in events.items()}
        handle.mktree("Events", types).extend(events)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Toy:
    folder = tmp_path_factory.mktemp("toy")
    path = write_example_dataset(folder, events_per_file=EVENTS, files_per_class=1)
    events = make_events(EVENTS, True, np.random.default_rng(5))
    events["MET_pt"] = events["MET_pt"] * 4.0  # a third class: signal-like jets, large MET
    events["Jet"] = ak.with_field(events["Jet"], events["Jet"].btag * 0.3, "btag")
    _write_tree(folder / "third_0.root", events)
    return Toy(folder, yaml.safe_load(path.read_text()))


def _run(
    spec: TrainSpec, toy: Toy, on_event: Callable[[dict[str, Any]], None] | None = None, **kw: Any
) -> tuple[TrainResult, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    def sink(event: dict[str, Any]) -> None:
        json.dumps(event)  # every event is JSON-serialisable
        events.append(event)
        if on_event is not None:
            on_event(event)

    return train(spec, on_event=sink, cache=toy.cache, **kw), events


def _types(events: list[dict[str, Any]]) -> list[str]:
    """The events' types, without progress and the training report's overtraining notes
    (a KS test flags a class by chance 5% of the time)."""
    return [
        e["type"]
        for e in events
        if e["type"] != "progress"
        and not (e["type"] == "note" and e["message"].startswith("overtraining:"))
    ]


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def _notes(events: list[dict[str, Any]]) -> list[str]:
    """The notes, without the training report's overtraining ones (a toy model trained
    for an epoch or two may well score its training events differently)."""
    said = [e["message"] for e in _of(events, "note")]
    return [n for n in said if not n.startswith("overtraining:")]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The backends that train() makes, in order (to compare the bundle against)."""
    backends: list[Any] = []
    make = runner.make_backend

    def capture(*args: Any) -> Any:
        backends.append(make(*args))
        return backends[-1]

    monkeypatch.setattr(runner, "make_backend", capture)
    return backends


def _file_matrix(spec: TrainSpec, toy: Toy) -> tuple[np.ndarray[Any, Any], list[str]]:
    """The training pipeline's matrix of every entry of every file, in entry order.

    The same dataset without cuts and with the whole sample in ``train``, read with the
    statistics (normalisation, jagged lengths) of the training run and not shuffled.
    """
    stats = compute_stats(spec.dataset, cache=toy.cache)
    every = spec.dataset.with_changes(cuts=(), split=Split(train=1.0, validation=0.0, test=0.0))
    stream = BatchStream(every, "train", 4096, shuffle=False, stats=stats)
    x = np.concatenate([batch.x for batch in stream])
    return x, [file.path for file in stream.plan.files]


def _assert_bundle_scores_files(
    result: TrainResult, backend: Any, spec: TrainSpec, toy: Toy
) -> None:
    """ONNX Runtime and the native model score each ROOT file as the backend does."""
    x, files = _file_matrix(spec, toy)
    assert len(x) == EVENTS * len(files)
    expected = backend.predict(x)
    for engine, name in (("auto", "onnxruntime"), ("native", "native")):
        bundle = load_bundle(result.bundle, engine=engine)
        assert bundle.engine == name
        scores = np.concatenate([bundle.predict(path) for path in files])
        assert scores.shape == expected.shape
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def _assert_plots(result: TrainResult, names: list[str]) -> dict[str, Any]:
    plots = result.run_dir / "plots"
    assert result.plots == [plots / name for name in names]
    for path in result.plots:
        assert path.read_bytes()[:8] == PNG_MAGIC, path
    curves = json.loads((plots / "curves.json").read_text())
    assert curves["history"] == result.history
    return curves  # type: ignore[no-any-return]


def _assert_no_bundle(root: Path) -> None:
    """No bundle folder, no partial one, nothing that looks like a bundle under ``root``."""
    assert not any(root.rglob("bundle")), list(root.rglob("bundle"))
    assert not any(root.rglob(".bundle.partial-*"))
    assert not any(root.rglob("manifest.json"))


def _without_timing(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k not in TIMING} for record in history]


# -- the four built-in models ----------------------------------------------------------
BINARY_MODELS = {
    "torch-mlp": ({"name": "mlp", "params": {"sizes": [32, 32]}}, "torch", "model.pt"),
    "keras-mlp": (
        {"name": "mlp", "backend": "keras", "params": {"sizes": [32, 32]}},
        "keras",
        "model.keras",
    ),
    "bdt": ({"name": "bdt", "params": {"max_iter": 50}}, "sklearn", "model.joblib"),
    "torch-deepsets": (
        {"name": "deepsets", "params": {"phi": [16, 16], "rho": [32]}},
        "torch",
        "model.pt",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BINARY_MODELS))
def test_binary_end_to_end(toy: Toy, tmp_path: Path, captured: list[Any], case: str) -> None:
    model, kind, native = BINARY_MODELS[case]
    spec = toy.spec(tmp_path, model)
    result, events = _run(spec, toy)
    (backend,) = captured
    assert backend.kind == kind

    # where things are
    assert result.run_dir.parent == tmp_path
    assert result.run_dir.name.startswith(f"{model['name']}-")
    assert result.bundle == result.run_dir / "bundle"
    assert result.metrics["split"] == "test"
    assert result.metrics["auc"] > 0.9
    assert 0.0 < result.metrics["loss"] < 0.5

    # events, in order
    epochs = 1 if kind == "sklearn" else TRAINING["epochs"]
    notes = ["note"] if kind == "sklearn" else []
    assert _types(events) == [
        "start",
        "stats",
        "model",
        *["epoch"] * epochs,
        *notes,
        "test",
        "report",
        "done",
    ]
    start, stats, built = events[:3]
    assert start == {
        "type": "start",
        "run_dir": str(result.run_dir),
        "name": model["name"],
        "task": "binary",
    }
    assert set(stats["events"]) == {"train", "validation", "test"}
    assert all(n > 0 for n in stats["events"].values())
    assert sum(stats["events"].values()) < 2 * EVENTS  # the cut nJet >= 2 removed some
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert stats["width"] == manifest["layout"]["width"]
    assert "HT" in stats["features"]
    assert built == {"type": "model", "backend": kind, "device": "cpu", "idim": stats["width"]}
    records = _of(events, "epoch")
    assert [e["epoch"] for e in records] == list(range(1, epochs + 1))
    for record in records:
        assert record["epochs"] == epochs
        assert np.isfinite(record["loss"])
        assert np.isfinite(record["val_loss"])
        assert 0.8 < record["val_auc"] <= 1.0
        assert record["events"] > 0
    for progress in _of(events, "progress"):
        assert 1 <= progress["epoch"] <= epochs
        assert 1 <= progress["batch"] <= progress["batches"]
    if kind == "sklearn":
        assert _of(events, "note")[0]["message"].startswith("bdt: trained on")
    assert result.history == [{k: v for k, v in e.items() if k != "type"} for e in records]
    (test_event,), done = _of(events, "test"), events[-1]
    assert test_event == {"type": "test", **result.metrics}
    assert done == {"type": "done", "bundle": str(result.bundle), "metrics": result.metrics}

    # the bundle
    assert set(manifest) >= MANIFEST_FIELDS
    assert manifest["bundle_format"] == BUNDLE_FORMAT
    assert (manifest["name"], manifest["task"], manifest["tree"]) == (
        model["name"],
        "binary",
        "Events",
    )
    assert manifest["classes"] == ["background", "signal"]
    assert manifest["backend"] == kind
    assert manifest["native"] == native
    assert (result.bundle / native).is_file()
    assert manifest["onnx"] == "model.onnx"
    assert (result.bundle / "model.onnx").is_file()
    assert manifest["cuts"] == ["nJet >= 2"]
    assert manifest["new_branches"] == [["HT", "sum(Jet_pt)"]]
    assert manifest["inputs"]["Jet_pt"] == "jagged"
    assert manifest["inputs"]["MET_pt"] == "flat"
    assert "HT" not in manifest["inputs"]
    assert "Jet_phi" not in manifest["inputs"]
    assert manifest["metrics"] == result.metrics
    assert manifest["history"] == result.history
    assert manifest["training"]["epochs"] == TRAINING["epochs"]
    assert manifest["dataset"] == json.loads(json.dumps(spec.dataset.to_dict()))
    assert manifest["events"]["selected"] == sum(stats["events"].values())
    assert {"numpy", "uproot", "scikit-learn", "onnxruntime"} <= set(manifest["versions"])
    said = [e["message"] for e in _of(events, "note")]
    assert manifest["notes"] == [n for n in said if not n.startswith("overtraining:")]
    assert not list(result.run_dir.glob(".bundle.partial-*"))

    # plots and curves
    curves = _assert_plots(result, ["loss.png", "roc.png", "rejection.png", "scores.png"])
    roc = curves["roc"]["curves"]["signal"]
    assert roc["auc"] == result.metrics["auc"]
    assert roc["fpr"][0] == 0.0
    assert roc["tpr"][-1] == 1.0
    assert set(curves["scores"]["classes"]) == {"background", "signal"}
    assert len(curves["scores"]["edges"]) == 41

    _assert_bundle_scores_files(result, backend, spec, toy)


@pytest.mark.slow
def test_multiclass_end_to_end(toy: Toy, tmp_path: Path, captured: list[Any]) -> None:
    classes = {**toy.dataset["classes"], "third": ["third_0.root"]}
    spec = toy.spec(tmp_path, training={"learning_rate": 5e-3}, classes=classes)
    result, events = _run(spec, toy)
    assert _types(events) == [
        *("start", "stats", "model", "epoch", "epoch", "epoch", "test", "report", "done")
    ]
    assert events[0]["task"] == "multiclass"
    assert set(result.metrics["auc_per_class"]) == {"background", "signal", "third"}
    assert all(auc > 0.8 for auc in result.metrics["auc_per_class"].values())
    assert result.metrics["auc"] == pytest.approx(
        np.mean(list(result.metrics["auc_per_class"].values()))
    )
    assert all("val_auc_per_class" in record for record in result.history)
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert (manifest["task"], manifest["classes"]) == (
        "multiclass",
        ["background", "signal", "third"],
    )
    curves = _assert_plots(result, ["loss.png", "roc.png", "rejection.png", "scores.png"])
    assert set(curves["roc"]["curves"]) == {"background", "signal", "third"}
    scores = load_bundle(result.bundle).predict(toy.file("third"))
    assert scores.shape == (EVENTS, 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    assert (scores.argmax(axis=1) == 2).mean() > 0.7  # the third class is told apart
    _assert_bundle_scores_files(result, captured[0], spec, toy)


@pytest.mark.slow
def test_regression_end_to_end(toy: Toy, tmp_path: Path, captured: list[Any]) -> None:
    spec = toy.spec(
        tmp_path,
        classes=None,
        weights=None,
        new_branches=None,
        files=["background_0.root", "signal_0.root"],
        target="sum(Jet_pt) / 100",
    )
    result, events = _run(spec, toy)
    assert events[0]["task"] == "regression"
    assert _types(events) == [
        *("start", "stats", "model", "epoch", "epoch", "epoch", "test", "report", "done")
    ]
    assert set(result.metrics) == {"events", "loss", "mae", "r2", "split"}
    assert result.metrics["r2"] > 0.8
    losses = [record["loss"] for record in result.history]
    assert losses[-1] < losses[0]
    assert all("val_r2" in r and "val_auc" not in r for r in result.history)
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert (manifest["task"], manifest["classes"]) == ("regression", [])
    curves = _assert_plots(result, ["loss.png"])  # no ROC and no score classes
    assert curves["roc"] == {"curves": {}}
    assert curves["scores"] == {}
    _assert_bundle_scores_files(result, captured[0], spec, toy)


# -- early stopping, checkpoints and resuming -------------------------------------------
@pytest.mark.slow
def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    dataset = yaml.safe_load(write_example_dataset(tiny, 300, 1).read_text())
    spec = TrainSpec.from_dict(
        {
            "dataset": dataset,
            "model": {"name": "mlp", "params": {"sizes": [128, 128]}},
            "training": {
                "epochs": 40,
                "batch_size": 32,
                "learning_rate": 0.02,
                "early_stopping": 1,
                "min_delta": 0.0,
                "device": "cpu",
                "output": str(tmp_path),
            },
        },
        tiny,
    )
    result, events = train_events(spec, tmp_path / "cache")
    (stop,) = _of(events, "early_stop")
    history = result.history
    val_losses = [record["val_loss"] for record in history]
    best = int(np.argmin(val_losses)) + 1
    assert len(history) == stop["epoch"] < 40
    assert stop["best_epoch"] == best == len(history) - 1  # patience 1
    assert _types(events)[-4:] == ["early_stop", "test", "report", "done"]
    # the bundle holds the best epoch's model, not the last one
    stats = compute_stats(spec.dataset, cache=tmp_path / "cache")
    batches = list(BatchStream(spec.dataset, "validation", 4096, stats=stats))
    x, y, w = (np.concatenate([getattr(b, k) for b in batches]) for k in ("x", "y", "w"))
    scores = load_bundle(result.bundle, engine="native").predict_matrix(x)
    again = evaluate_scores("binary", y, scores, w)
    assert again["loss"] == pytest.approx(val_losses[best - 1], rel=1e-5)
    assert again["loss"] != pytest.approx(val_losses[-1], rel=1e-5)


def test_a_run_that_stopped_early_is_not_trained_further_on_resume(
    toy: Toy, tmp_path: Path
) -> None:
    # min_delta so large that no epoch after the first counts as better: stops at epoch 2
    training = {"epochs": 4, "early_stopping": 1, "min_delta": 1e9}
    spec = toy.spec(tmp_path, {"name": "mlp", "backend": "torch"}, training=training)
    run = tmp_path / "run"
    first, events = _run(spec, toy, run_dir=run)
    assert [e["epoch"] for e in _of(events, "early_stop")] == [2]
    progress = json.loads((run / "checkpoint" / "progress.json").read_text())
    assert progress["stopped_early"] is True
    x, _ = _file_matrix(spec, toy)
    best_scores = load_bundle(first.bundle, engine="native").predict_matrix(x)

    resumed, events = _run(spec.with_training(resume=True), toy, run_dir=run)
    assert _notes(events) == [
        "the checkpointed run stopped early at epoch 2 (best epoch 1): nothing left to train"
    ]
    assert _of(events, "epoch") == []
    assert resumed.history == first.history
    # the bundle holds the best epoch's model again, not the last checkpoint's
    again = load_bundle(resumed.bundle, engine="native").predict_matrix(x)
    np.testing.assert_array_equal(again, best_scores)


def train_events(spec: TrainSpec, cache: Path) -> tuple[TrainResult, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    return train(spec, on_event=events.append, cache=cache), events


class Interrupt:
    """An event sink that raises KeyboardInterrupt at the epoch event ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "epoch" and event["epoch"] == self.at:
            raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_interrupted_run_resumes_from_its_checkpoint(
    toy: Toy, tmp_path: Path, backend: str
) -> None:
    spec = toy.spec(tmp_path, {"name": "mlp", "backend": backend}, training={"epochs": 4})
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _run(spec, toy, on_event=Interrupt(2), run_dir=run)
    _assert_no_bundle(run)
    progress = json.loads((run / "checkpoint" / "progress.json").read_text())
    assert progress["epoch"] == 2  # the epoch announced was checkpointed
    assert [record["epoch"] for record in progress["history"]] == [1, 2]
    suffix = ".keras" if backend == "keras" else ""
    assert (run / "checkpoint" / f"last{suffix}").is_file()
    assert (run / "checkpoint" / f"best{suffix}").is_file()

    result, events = _run(spec.with_training(resume=True), toy, run_dir=run)
    assert _notes(events) == ["resumed from the checkpoint of epoch 2"]
    assert [e["epoch"] for e in _of(events, "epoch")] == [3, 4]
    assert [record["epoch"] for record in result.history] == [1, 2, 3, 4]
    assert result.history[:2] == progress["history"]
    assert result.bundle == run / "bundle"
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert len(manifest["history"]) == 4

    # the same as a run that was never interrupted (shuffles depend on seed and epoch)
    straight, _ = _run(spec, toy, run_dir=tmp_path / "straight")
    for resumed, uninterrupted in zip(result.history, straight.history, strict=True):
        assert _without_timing([resumed]) == _without_timing([uninterrupted])
    assert straight.metrics == result.metrics


def test_runs_started_in_the_same_second_get_their_own_folders(
    toy: Toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from types import SimpleNamespace

    clock = SimpleNamespace(strftime=lambda _: "20260101-120000", perf_counter=time.perf_counter)
    monkeypatch.setattr(runner, "time", clock)
    spec = toy.spec(tmp_path, {"name": "bdt", "params": {"max_iter": 5}})
    first, _ = _run(spec, toy)
    second, _ = _run(spec, toy)
    assert first.run_dir == tmp_path / "bdt-20260101-120000"
    assert second.run_dir == tmp_path / "bdt-20260101-120000-2"
    assert first.bundle.is_dir()
    assert second.bundle.is_dir()


def test_resume_without_a_checkpoint_starts_afresh(toy: Toy, tmp_path: Path) -> None:
    spec = toy.spec(tmp_path, training={"epochs": 1, "resume": True})
    result, events = _run(spec, toy, run_dir=tmp_path / "run")
    assert not _notes(events)
    assert [record["epoch"] for record in result.history] == [1]


def test_interrupt_while_writing_the_bundle_leaves_none(
    toy: Toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlaas_jupyter.train.torch_backend import TorchBackend

    def interrupted(self: Any, path: Path) -> bool:
        path.write_bytes(b"half an onnx file")
        raise KeyboardInterrupt

    monkeypatch.setattr(TorchBackend, "export_onnx", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(toy.spec(tmp_path, training={"epochs": 1}), toy, run_dir=tmp_path / "run")
    _assert_no_bundle(tmp_path / "run")
    assert (tmp_path / "run" / "plots" / "loss.png").is_file()  # it got that far


# -- bad input: a clear error and no bundle ---------------------------------------------
BAD_MODEL_FILES = {
    "no model function": (
        "def build(idim):\n    pass\n",
        r"bad_model\.py must define a function model\(idim\)",
    ),
    "raises": (
        "def model(idim):\n    raise RuntimeError('no GPU here')\n",
        r"bad_model\.py: model\(idim=\d+\) raised RuntimeError: no GPU here \(line 2\)",
    ),
    "wrong return type": (
        "def model(idim):\n    return [idim]\n",
        r"bad_model\.py: model\(\) must return a Keras model or a torch\.nn\.Module, "
        r"but it returned builtins\.list",
    ),
    "input size mismatch": (
        "import torch.nn as nn\n\ndef model(idim):\n    return nn.Linear(idim + 3, 1)\n",
        r"model expects (\d+) input columns but the data have idim=(\d+) columns "
        r"\(first features: MET_pt",
    ),
}


@pytest.mark.parametrize("case", list(BAD_MODEL_FILES))
def test_bad_model_file(toy: Toy, tmp_path: Path, case: str) -> None:
    text, message = BAD_MODEL_FILES[case]
    path = tmp_path / "bad_model.py"
    path.write_text(text)
    spec = toy.spec(tmp_path, {"file": str(path), "backend": "torch"})
    events: list[dict[str, Any]] = []
    with pytest.raises(TrainingError, match=message) as raised:
        train(spec, on_event=events.append, run_dir=tmp_path / "run", cache=toy.cache)
    if case == "input size mismatch":
        import re

        found = re.search(message, str(raised.value))
        assert found is not None
        assert int(found.group(1)) == int(found.group(2)) + 3
    assert _types(events) == ["start", "stats"]  # it failed while building the model
    _assert_no_bundle(tmp_path)


def test_no_events_left_after_cuts(toy: Toy, tmp_path: Path) -> None:
    spec = toy.spec(tmp_path, cuts=["nJet >= 2", "MET_pt < 0"])
    with pytest.raises(DataError, match=r"no events left: 5000 events read, none passes") as err:
        train(spec, run_dir=tmp_path / "run", cache=toy.cache)
    assert "MET_pt < 0" in str(err.value)
    _assert_no_bundle(tmp_path)


def test_a_single_class_in_the_training_split(toy: Toy, tmp_path: Path) -> None:
    events = make_events(400, True, np.random.default_rng(9))
    events["MET_pt"] = events["MET_pt"] + np.float32(10_000.0)
    _write_tree(tmp_path / "far_signal.root", events)
    classes = {
        "background": [toy.file("background")],
        "signal": [str(tmp_path / "far_signal.root")],
    }
    spec = toy.spec(tmp_path, classes=classes, cuts=["MET_pt < 5000"])
    with pytest.raises(TrainingError, match=r"only one class \(background\)") as raised:
        train(spec, run_dir=tmp_path / "run", cache=toy.cache)
    assert "'signal': 0" in str(raised.value)
    _assert_no_bundle(tmp_path)


NAN_MODEL = """
import torch.nn as nn

class Broken(nn.Module):
    def __init__(self, idim):
        super().__init__()
        self.linear = nn.Linear(idim, 1)

    def forward(self, x):
        return self.linear(x) * float("nan")

def model(idim):
    return Broken(idim)
"""


def test_nan_loss_stops_the_run(toy: Toy, tmp_path: Path) -> None:
    path = tmp_path / "nan_model.py"
    path.write_text(NAN_MODEL)
    spec = toy.spec(tmp_path, {"file": str(path)})
    events: list[dict[str, Any]] = []
    with pytest.raises(TrainingError, match=r"training loss became NaN at epoch 1, batch 1"):
        train(spec, on_event=events.append, run_dir=tmp_path / "run", cache=toy.cache)
    assert "epoch" not in _types(events)
    _assert_no_bundle(tmp_path)


# -- reproducibility ------------------------------------------------------------------
@pytest.mark.slow
def test_same_seed_same_metrics(toy: Toy, tmp_path: Path) -> None:
    spec = toy.spec(tmp_path, training={"epochs": 2})
    first, _ = _run(spec, toy, run_dir=tmp_path / "a")
    second, _ = _run(spec, toy, run_dir=tmp_path / "b")
    assert first.metrics == second.metrics
    assert _without_timing(first.history) == _without_timing(second.history)
    width = json.loads((first.bundle / "manifest.json").read_text())["layout"]["width"]
    x = np.random.default_rng(0).normal(size=(50, width)).astype(np.float32)
    np.testing.assert_array_equal(
        load_bundle(first.bundle, engine="native").predict_matrix(x),
        load_bundle(second.bundle, engine="native").predict_matrix(x),
    )


# -- the command line --------------------------------------------------------------------
def _spec_file(toy: Toy, tmp_path: Path) -> Path:
    dataset = {
        **toy.dataset,
        "classes": {"background": [toy.file("background")], "signal": [toy.file("signal")]},
    }
    path = tmp_path / "train.yaml"
    training = {**TRAINING, "output": str(tmp_path / "runs")}
    path.write_text(
        yaml.safe_dump({"dataset": dataset, "model": {"name": "mlp"}, "training": training})
    )
    return path


@pytest.mark.slow
def test_cli_train_prints_the_bundle(
    toy: Toy, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    spec = _spec_file(toy, tmp_path)
    code = main(["train", str(spec), "--epochs", "1", "--run-dir", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"bundle: {tmp_path / 'run' / 'bundle'}" in out.splitlines()
    assert "test metrics: events" in out
    assert " auc 0.9" in out
    assert "epoch 1/1  loss" in err
    assert "val_auc" in err
    assert (tmp_path / "run" / "bundle" / "manifest.json").is_file()
    assert not (tmp_path / "runs").exists()  # --run-dir wins over training.output


@pytest.mark.slow
def test_cli_train_json_events(
    toy: Toy, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    spec = _spec_file(toy, tmp_path)
    code = main(["train", str(spec), "--epochs", "1", "--json", "--run-dir", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert _types(events) == ["start", "stats", "model", "epoch", "test", "report", "done"]
    assert events[-1]["bundle"] == str(tmp_path / "r" / "bundle")
    assert events[-1]["metrics"]["auc"] > 0.85


def test_cli_train_error_is_one_line(
    toy: Toy, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    spec = _spec_file(toy, tmp_path)
    bad = tmp_path / "bad_model.py"
    bad.write_text("def build(idim):\n    pass\n")
    code = main(["train", str(spec), "--model", str(bad), "--run-dir", str(tmp_path / "run")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"mlaas train: error: model file {bad} must define a function model(idim) returning a model"
    )
    _assert_no_bundle(tmp_path)


MLAAS4HEP_KERAS = '''"""A model file as MLaaS4HEP users wrote them."""
from keras.models import Sequential
from keras.layers import Dense, Activation, Input


def model(idim):
    ml_model = Sequential([Input(shape=(idim,)), Dense(32), Activation("relu"),
                           Dense(1), Activation("sigmoid")])
    ml_model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return ml_model
'''


@pytest.mark.slow
def test_cli_mlaas4hep_inputs_train_and_predict(
    toy: Toy, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    inputs = {
        "files": tmp_path / "files.txt",
        "labels": tmp_path / "labels.txt",
        "model": tmp_path / "ex_keras.py",
        "params": tmp_path / "params.json",
        "preproc": tmp_path / "preproc.json",
    }
    inputs["files"].write_text(f"{toy.file('background')}\n{toy.file('signal')}\n")
    inputs["labels"].write_text("0\n1\n")
    inputs["model"].write_text(MLAAS4HEP_KERAS)
    params = {
        "branch": "Events",
        "epochs": 1,
        "batch_size": 256,
        "selected_branches": ["MET_pt", "MET_phi", "nJet", "Jet_pt", "Jet_btag"],
        "chunk_size": 1000,
        "nevts": -1,
    }
    inputs["params"].write_text(json.dumps(params))
    preproc = {
        "new_branch": {
            "HT": {"def": "sum(Jet_pt)", "type": "flat", "cut": "HT>0", "remove": "False"}
        },
        "flat_cut": {"nJet": {"cut": "2<=nJet<=12", "remove": "False"}},
    }
    inputs["preproc"].write_text(json.dumps(preproc))
    out = tmp_path / "out"
    argv = ["train"] + [f"--{role}={path}" for role, path in inputs.items()] + ["--fout", str(out)]
    code = main(argv)
    printed, err = capsys.readouterr()
    assert code == 0, err
    bundle = out / "bundle"
    assert f"bundle: {bundle}" in printed.splitlines()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert (manifest["backend"], manifest["classes"]) == ("keras", ["label_0", "label_1"])
    assert manifest["cuts"] == ["HT > 0", "(2 <= nJet) & (nJet <= 12)"]
    assert manifest["new_branches"] == [["HT", "sum(Jet_pt)"]]
    assert set(manifest["inputs"]) == {"MET_pt", "MET_phi", "nJet", "Jet_pt", "Jet_btag"}
    assert (bundle / "model_source.py").read_text() == MLAAS4HEP_KERAS
    assert manifest["metrics"]["auc"] > 0.6  # one epoch of 12 batches

    scores = tmp_path / "scores.root"
    code = main(["predict", str(bundle), toy.file("signal"), "--out", str(scores)])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert printed.startswith(f"scored {EVENTS} entries")
    with uproot.open(scores) as handle:
        tree = handle["Events"]
        assert tree.num_entries == EVENTS
        values = tree["score"].array(library="np")
    expected = load_bundle(bundle).predict(toy.file("signal"))
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-6)
    assert values.min() >= 0.0
    assert values.max() <= 1.0
