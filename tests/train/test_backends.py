"""Backends (PyTorch, Keras, BDT) and model construction, trained on the toy dataset."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml
from sklearn.metrics import roc_auc_score

from mlaas_jupyter.errors import TrainingError
from mlaas_jupyter.examples import make_events, write_example_dataset
from mlaas_jupyter.specs.dataset import DatasetSpec
from mlaas_jupyter.specs.training import ModelSpec, TrainConfig
from mlaas_jupyter.stream.batches import BatchStream
from mlaas_jupyter.stream.stats import compute_stats
from mlaas_jupyter.train.backend import ModelContext, make_backend

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

CONFIG = TrainConfig(epochs=5, batch_size=256, learning_rate=3e-3, device="cpu", threads=1)


class Data:
    """A dataset spec with its statistics, streams and model context."""

    def __init__(self, spec: DatasetSpec, cache: Path) -> None:
        self.spec = spec
        self.stats = compute_stats(spec, cache=cache)
        self.train = self.stream("train")
        self.validation = self.stream("validation")
        n_classes = len(spec.labels) if spec.task == "multiclass" else 1
        self.context = ModelContext(self.train.layout, spec.task, n_classes, seed=7)

    def stream(self, split: str) -> BatchStream:
        return BatchStream(self.spec, split, CONFIG.batch_size, stats=self.stats)

    def arrays(self, split: str = "validation") -> tuple[np.ndarray[Any, Any], ...]:
        batches = list(self.stream(split))
        return tuple(np.concatenate([getattr(b, k) for b in batches]) for k in ("x", "y", "w"))


def _write(path: Path, events: dict[str, Any]) -> None:
    with uproot.recreate(path) as handle:
        types = {k: v.type.content if k in ("Jet", "Muon") else v.dtype for k, v in events.items()}
        handle.mktree("Events", types).extend(events)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Data]:
    """Binary, three-class and regression versions of the toy dataset."""
    folder = tmp_path_factory.mktemp("toy")
    path = write_example_dataset(folder, events_per_file=3000, files_per_class=1)
    base = yaml.safe_load(path.read_text())
    events = make_events(3000, True, np.random.default_rng(5))
    events["MET_pt"] = events["MET_pt"] * 4.0  # a third class: signal-like jets, large MET
    events["Jet"] = ak.with_field(events["Jet"], events["Jet"].btag * 0.3, "btag")
    _write(folder / "third_0.root", events)
    three = {**base, "classes": {**base["classes"], "third": ["third_0.root"]}}
    regression = {k: v for k, v in base.items() if k not in ("classes", "weights", "new_branches")}
    regression.update(files=["background_0.root", "signal_0.root"], target="sum(Jet_pt) / 100")
    cache = folder / "cache"
    return {
        "binary": Data(DatasetSpec.from_file(path), cache),
        "multiclass": Data(DatasetSpec.from_dict(three, folder), cache),
        "regression": Data(DatasetSpec.from_dict(regression, folder), cache),
    }


def _train(data: Data, model: ModelSpec, config: TrainConfig = CONFIG) -> Any:
    backend = make_backend(model, data.context, config)
    if backend.epochless:
        backend.fit(data.train, data.validation)
    else:
        for _ in range(config.epochs):
            backend.train_epoch(data.train)
    return backend


def _auc(data: Data, backend: Any) -> float:
    x, y, w = data.arrays()
    return float(roc_auc_score(y, backend.predict(x), sample_weight=w))


def _check_exports(data: Data, backend: Any, directory: Path, module: Any) -> None:
    """ONNX output and the native reload both equal predict()."""
    import onnxruntime

    x = data.arrays()[0][:500]
    expected = backend.predict(x)
    assert backend.export_onnx(directory / "model.onnx"), backend.notes
    session = onnxruntime.InferenceSession(str(directory / "model.onnx"))
    got = session.run(["score"], {"x": x})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    fields = backend.save_native(directory)
    assert (directory / fields["native"]).is_file()
    predict = module.load_native(directory, fields, data.context)
    np.testing.assert_allclose(predict(x), expected, rtol=1e-6, atol=1e-6)


# -- the built-in models ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "hidden"),
    [({}, [64, 64]), ({"hidden": 16}, [16, 16]), ({"hidden": 8, "layers": 3}, [8, 8, 8])],
)
def test_mlp_width_forms(toy: dict[str, Data], params: dict[str, Any], hidden: list[int]) -> None:
    import torch

    from mlaas_jupyter.train._builtin_models import build_torch_builtin

    layout = toy["binary"].context.layout
    net = build_torch_builtin("mlp", layout, 1, params)
    widths = [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [*hidden, 1]
    with pytest.raises(TrainingError, match="give sizes, or hidden and layers, not both"):
        build_torch_builtin("mlp", layout, 1, {"sizes": [4], "hidden": 4})
    with pytest.raises(TrainingError, match=r"model.params.layers must be a positive integer"):
        build_torch_builtin("mlp", layout, 1, {"hidden": 4, "layers": 0})


@pytest.mark.slow
def test_torch_mlp_trains_exports_and_resumes(toy: dict[str, Data], tmp_path: Path) -> None:
    from mlaas_jupyter.train import torch_backend

    data = toy["binary"]
    backend = _train(data, ModelSpec(name="mlp", params={"sizes": [32, 32]}))
    assert backend.kind == "torch"
    assert backend.device == "cpu"
    assert _auc(data, backend) > 0.9
    _check_exports(data, backend, tmp_path, torch_backend)
    fields = backend.save_native(tmp_path)
    assert fields["format"] == "torch-state-dict"
    assert fields["builder"]["name"] == "mlp"
    x = data.arrays()[0][:100]
    backend.save_checkpoint(tmp_path / "last")
    before = backend.predict(x)
    backend.train_epoch(data.train)
    backend.load_checkpoint(tmp_path / "last")
    np.testing.assert_array_equal(backend.predict(x), before)


@pytest.mark.slow
def test_keras_mlp_trains_and_exports(toy: dict[str, Data], tmp_path: Path) -> None:
    from mlaas_jupyter.train import keras_backend

    data = toy["binary"]
    backend = _train(data, ModelSpec(name="mlp", params={"sizes": [32, 32]}, backend="keras"))
    assert backend.kind == "keras"
    assert _auc(data, backend) > 0.9
    _check_exports(data, backend, tmp_path, keras_backend)
    x = data.arrays()[0][:100]
    backend.save_checkpoint(tmp_path / "last")
    assert (tmp_path / "last.keras").is_file()
    before = backend.predict(x)
    backend.train_epoch(data.train)
    backend.load_checkpoint(tmp_path / "last")
    np.testing.assert_allclose(backend.predict(x), before, atol=1e-6)


def test_bdt_trains_exports_and_notes(toy: dict[str, Data], tmp_path: Path) -> None:
    from mlaas_jupyter.train import sklearn_backend

    data = toy["binary"]
    config = CONFIG.model_copy(update={"bdt_max_events": 2000})
    backend = _train(data, ModelSpec(name="bdt", params={"max_iter": 50}), config)
    assert backend.epochless
    assert backend.kind == "sklearn"
    assert any("2000 of about" in note for note in backend.notes), backend.notes
    assert _auc(data, backend) > 0.9
    _check_exports(data, backend, tmp_path, sklearn_backend)
    with pytest.raises(TrainingError, match="allowed"):
        make_backend(ModelSpec(name="bdt", params={"depth": 3}), data.context, CONFIG)


@pytest.mark.slow
def test_torch_deepsets_trains_and_exports(toy: dict[str, Data], tmp_path: Path) -> None:
    from mlaas_jupyter.train import torch_backend

    data = toy["binary"]
    backend = _train(data, ModelSpec(name="deepsets", params={"phi": [16, 16], "rho": [32]}))
    assert _auc(data, backend) > 0.9
    _check_exports(data, backend, tmp_path, torch_backend)


def test_deepsets_is_permutation_invariant(toy: dict[str, Data]) -> None:
    data = toy["binary"]
    backend = make_backend(ModelSpec(name="deepsets"), data.context, CONFIG)
    x = data.arrays()[0][:200]
    layout = data.context.layout
    mask = next(f for f in layout.features if f.kind == "mask")
    blocks = [layout.feature(name) for name in mask.mask_of] + [mask]
    order = np.random.default_rng(3).permutation(mask.width)
    permuted = x.copy()
    for block in blocks:
        columns = block.offset + np.arange(block.width)
        permuted[:, columns] = x[:, columns[order]]
    assert not np.array_equal(permuted, x)
    np.testing.assert_allclose(backend.predict(permuted), backend.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "bdt"])
def test_multiclass(toy: dict[str, Data], tmp_path: Path, name: str) -> None:
    from mlaas_jupyter.train import sklearn_backend, torch_backend

    data = toy["multiclass"]
    assert data.context.task == "multiclass"
    assert data.context.n_classes == 3
    backend = _train(data, ModelSpec(name=name, params={"max_iter": 50} if name == "bdt" else {}))
    x, y, w = data.arrays()
    scores = backend.predict(x)
    assert scores.shape == (len(y), 3)
    np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)
    for k in range(3):
        assert roc_auc_score(y == k, scores[:, k], sample_weight=w) > 0.8
    _check_exports(data, backend, tmp_path, sklearn_backend if name == "bdt" else torch_backend)


@pytest.mark.slow
def test_regression_loss_decreases(toy: dict[str, Data], tmp_path: Path) -> None:
    from mlaas_jupyter.train import torch_backend

    data = toy["regression"]
    backend = make_backend(ModelSpec(name="mlp"), data.context, CONFIG)
    x, y, w = data.arrays()
    variance = float(np.average((y - np.average(y, weights=w)) ** 2, weights=w))
    losses = [backend.train_epoch(data.train) for _ in range(CONFIG.epochs)]
    assert losses[-1] < 0.5 * losses[0]
    residual = float(np.average((backend.predict(x) - y) ** 2, weights=w))
    assert residual < 0.2 * variance
    _check_exports(data, backend, tmp_path, torch_backend)


def test_torch_same_seed_same_predictions(toy: dict[str, Data]) -> None:
    data = toy["binary"]
    config = CONFIG.model_copy(update={"epochs": 1})
    x = data.arrays()[0][:300]
    runs = []
    for _ in range(2):
        backend = make_backend(ModelSpec(name="mlp"), data.context, config)
        backend.train_epoch(data.stream("train"))
        runs.append(backend.predict(x))
    np.testing.assert_array_equal(runs[0], runs[1])
    other = make_backend(ModelSpec(name="mlp"), replace(data.context, seed=8), config)
    other.train_epoch(data.stream("train"))
    assert not np.array_equal(other.predict(x), runs[0])


def test_cuda_requested_without_gpu(toy: dict[str, Data]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(TrainingError, match="cuda"):
        make_backend(
            ModelSpec(name="mlp"),
            toy["binary"].context,
            CONFIG.model_copy(update={"device": "cuda"}),
        )


# -- user model files -------------------------------------------------------------------
TORCH_FILE = """
import torch.nn as nn

def model(idim, hidden=16):
    return nn.Sequential(nn.Linear(idim, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid())
"""

KERAS_FILE = """
import keras

def model(idim):
    ml_model = keras.models.Sequential([
        keras.Input(shape=(idim,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    ml_model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                     loss="binary_crossentropy", metrics=["accuracy"])
    return ml_model
"""

NAN_FILE = """
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


def _file(tmp_path: Path, text: str, name: str = "my_model.py") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.slow
def test_torch_model_file(toy: dict[str, Data], tmp_path: Path) -> None:
    from mlaas_jupyter.train import torch_backend

    data = toy["binary"]
    spec = ModelSpec(name=None, file=_file(tmp_path, TORCH_FILE), params={"hidden": 24})
    backend = _train(data, spec)
    assert backend.output == "probs"  # ends in Sigmoid: BCELoss, no second sigmoid
    assert _auc(data, backend) > 0.9
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    _check_exports(data, backend, bundle, torch_backend)
    assert (bundle / "model_source.py").read_text() == TORCH_FILE


@pytest.mark.slow
def test_keras_model_file(toy: dict[str, Data], tmp_path: Path) -> None:
    data = toy["binary"]
    spec = ModelSpec(name=None, file=_file(tmp_path, KERAS_FILE), backend="keras")
    backend = _train(data, spec)
    assert _auc(data, backend) > 0.9
    assert backend.export_onnx(tmp_path / "model.onnx"), backend.notes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def build(idim):\n    pass\n", "must define a function model"),
        (
            "def model(idim):\n    raise RuntimeError('no GPU here')\n",
            "RuntimeError: no GPU here.*line 2",
        ),
        ("def model(idim):\n    return [idim]\n", "returned builtins.list"),
        ("def model(idim:\n    pass\n", "syntax error at line 1"),
        ("import no_such_module_xyz\n", "ModuleNotFoundError.*line 1"),
        (
            "import torch.nn as nn\ndef model(idim):\n    return nn.Linear(idim + 3, 1)\n",
            r"model expects \d+ input columns but the data have idim=\d+ columns",
        ),
        (
            "import torch.nn as nn\ndef model(idim):\n    return nn.Linear(idim, 2)\n",
            "shape \\(2, 2\\)",
        ),
    ],
)
def test_model_file_errors(toy: dict[str, Data], tmp_path: Path, text: str, message: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(TrainingError, match=message) as raised:
        make_backend(ModelSpec(name=None, file=path), toy["binary"].context, CONFIG)
    assert (
        "my_model.py" in str(raised.value)
        or "model expects" in str(raised.value)
        or ("shape" in str(raised.value))
    )


def test_missing_model_file(toy: dict[str, Data], tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"nowhere\.py not found"):
        make_backend(
            ModelSpec(name=None, file=str(tmp_path / "nowhere.py")), toy["binary"].context, CONFIG
        )


def test_nan_loss_is_reported(toy: dict[str, Data], tmp_path: Path) -> None:
    backend = make_backend(
        ModelSpec(name=None, file=_file(tmp_path, NAN_FILE)), toy["binary"].context, CONFIG
    )
    with pytest.raises(TrainingError, match="NaN at epoch 1, batch 1"):
        backend.train_epoch(toy["binary"].stream("train"))


LAYOUT_FILE = """
import torch.nn as nn

def model(idim, layout, hidden=8):
    assert layout.width == idim
    return nn.Sequential(nn.Linear(idim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
"""


def test_model_file_receives_layout(toy: dict[str, Data], tmp_path: Path) -> None:
    data = toy["binary"]
    spec = ModelSpec(name=None, file=_file(tmp_path, LAYOUT_FILE), params={"hidden": 4})
    backend = make_backend(spec, data.context, CONFIG)
    assert backend.builder["kind"] == "file"
    assert backend.predict(data.arrays()[0][:10]).shape == (10,)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_keras_other_tasks_export(toy: dict[str, Data], tmp_path: Path, task: str) -> None:
    from mlaas_jupyter.train import keras_backend

    data = toy[task]
    backend = _train(
        data, ModelSpec(name="mlp", backend="keras"), CONFIG.model_copy(update={"epochs": 2})
    )
    _check_exports(data, backend, tmp_path, keras_backend)


def test_torch_instance_from_a_notebook(toy: dict[str, Data], tmp_path: Path) -> None:
    from torch import nn

    from mlaas_jupyter.train import torch_backend

    data = toy["binary"]

    class Net(nn.Module):  # a class defined in a notebook cell: not importable later
        def __init__(self, idim: int) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(idim, 8), nn.ReLU(), nn.Linear(8, 1))

        def forward(self, x: Any) -> Any:
            return self.body(x)

    spec = ModelSpec(name=None, instance=Net(data.context.idim))
    backend = make_backend(spec, data.context, CONFIG)
    backend.train_epoch(data.stream("train"))
    fields = backend.save_native(tmp_path)
    assert fields["builder"]["program"] == "model.pt2"
    x = data.arrays()[0][:50]
    predict = torch_backend.load_native(tmp_path, fields, data.context)
    np.testing.assert_allclose(predict(x), backend.predict(x), rtol=1e-6, atol=1e-6)
