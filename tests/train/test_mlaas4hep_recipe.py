"""MLaaS4HEP's own recipe, unchanged: its ``keras_model.py`` (Keras 2 code, run with
tf_keras), the ``params.json`` of its doc/workflow_recipe.md with every field,
``files.txt`` and ``labels.txt``, through the CLI and the in-process Client; its
PyTorch example, which imports MLaaS4HEP's own ``JaggedArrayLinear``, is refused in
one line naming what replaces it.

The two model files are copied verbatim from github.com/vkuznet/MLaaS4HEP
(src/python/MLaaS4HEP/keras_model.py and ex_pytorch.py; MIT License, Copyright (c)
2018 Valentin Kuznetsov).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from mlaas_jupyter.cli import main
from mlaas_jupyter.client import Client
from mlaas_jupyter.errors import TrainingError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.inference.bundle import load_bundle
from mlaas_jupyter.train.compat import from_mlaas4hep
from mlaas_jupyter.train.models import load_model_file

KERAS_MODEL_PY = '''"""
Basic example of ML model implemented via Keras framework
"""
from tensorflow import keras
from keras.models import Sequential
from keras.layers import Dense

def model(idim):
    "Simple Keras model for testing purposes"
    ml_model = keras.Sequential([keras.layers.Dense(128, activation='relu',input_shape=(idim,)),
                              keras.layers.Dropout(0.5),
                              keras.layers.Dense(64, activation='relu'),
                              keras.layers.Dropout(0.5),
                              keras.layers.Dense(1, activation='sigmoid')])
    ml_model.compile(optimizer=keras.optimizers.Adam(lr=1e-3), loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name='accuracy'), keras.metrics.AUC(name='auc')])
    return ml_model'''  # noqa: E501 (verbatim)

EX_PYTORCH_PY = '''"""
Basic example of ML model implemented via pytorch framework
"""
from MLaaS4HEP.jarray.pytorch import JaggedArrayLinear
try:
    import torch
except ImportError:
    torch = None

def model(idim):
    "Simple PyTorch model for testing purposes"
    if not torch:
        raise Exception("Please install pytorch package")
    ml_model = torch.nn.Sequential(
        JaggedArrayLinear(idim, 5),
        torch.nn.ReLU(),
        torch.nn.Linear(5, 1),
    )
    return ml_model
'''

# doc/workflow_recipe.md's params.json, every field, with fewer epochs and smaller chunks
PARAMS = {
    "nevts": 50000,
    "shuffle": True,
    "chunk_size": 1000,
    "epochs": 2,
    "batch_size": 100,
    "identifier": "",
    "branch": "Events",
    "selected_branches": "",
    "exclude_branches": ["run", "event", "luminosityBlock"],
    "hist": "pdfs",
    "redirector": "",
    "verbose": 1,
}
KERAS2_NOTE = (
    "keras_model.py is Keras 2 code (Dense(input_shape=...) at line 10, Adam(lr=...) at "
    "line 15): running it with tf_keras 2."
)


@pytest.fixture
def recipe(tmp_path: Path) -> dict[str, Path]:
    """The recipe's four inputs in one folder; the two files of files.txt (signal first,
    label 1, as the recipe lists GluGluToHToTauTau then VBF_HToTauTau) are toy data."""
    write_example_dataset(tmp_path / "data", events_per_file=1500, files_per_class=1)
    inputs = {
        "files": tmp_path / "files.txt",
        "labels": tmp_path / "labels.txt",
        "model": tmp_path / "keras_model.py",
        "params": tmp_path / "params.json",
    }
    inputs["files"].write_text("data/signal_0.root\ndata/background_0.root\n")
    inputs["labels"].write_text("1\n0\n")
    inputs["model"].write_text(KERAS_MODEL_PY)
    inputs["params"].write_text(json.dumps(PARAMS, indent=4))
    return inputs


def _check_notes(notes: list[str]) -> None:
    """One note per params.json field, in the file's order, then the Keras 2 note."""
    fields = [n for n in notes if n.startswith("params.json key ")]
    assert [n.split("'")[1] for n in fields] == list(PARAMS)
    fate = dict(zip(PARAMS, fields, strict=True))
    assert "(50000) is not supported" in fate["nevts"]
    assert "'hist' has no effect" in fate["hist"]
    assert "'verbose' has no effect" in fate["verbose"]
    assert fate["epochs"].endswith(
        "is honoured: 2 epochs (training.epochs), each one pass over every file"
    )
    assert fate["batch_size"].endswith("100 events per batch (training.batch_size)")
    assert fate["chunk_size"].endswith("1000 entries per read (dataset.step_size)")
    assert fate["branch"].endswith("tree Events (dataset.tree)")
    assert fate["identifier"].endswith(
        "run, event, luminosityBlock never used as features (dataset.exclude)"
    )
    for key in ("shuffle", "selected_branches", "exclude_branches", "redirector"):
        assert "is honoured" in fate[key]
    assert sum(KERAS2_NOTE in n for n in notes) == 1


def test_the_model_file_is_recognised_as_keras2(recipe: dict[str, Path]) -> None:
    fn, note = load_model_file(recipe["model"])
    assert note is not None
    assert note.startswith(KERAS2_NOTE)
    net = fn(7)
    assert type(net).__module__.startswith("tf_keras")
    assert net.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    assert net(np.zeros((3, 7), np.float32)).shape == (3, 1)


def test_pytorch_example_with_jagged_array_linear_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "ex_pytorch.py"
    path.write_text(EX_PYTORCH_PY)
    with pytest.raises(TrainingError) as caught:
        load_model_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"model file {path} (line 4) imports MLaaS4HEP.jarray.pytorch.JaggedArrayLinear, "
        "a helper of MLaaS4HEP itself, which is not used here: jagged branches reach the "
        "model already padded"
    )
    assert "torch.nn.Linear" in message
    assert "built-in deepsets" in message


def test_pytorch_example_through_the_cli(
    recipe: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(recipe["files"].parent / "cache"))
    torch_model = recipe["files"].parent / "ex_pytorch.py"
    torch_model.write_text(EX_PYTORCH_PY)
    argv = ["train", *(f"--{k}={v}" for k, v in recipe.items() if k != "model")]
    code = main([*argv, f"--model={torch_model}", "--fout", str(torch_model.parent / "out")])
    _, err = capsys.readouterr()
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"mlaas train: error: model file {torch_model} (line 4) imports ")
    assert "MLaaS4HEP.jarray.pytorch.JaggedArrayLinear" in last


@pytest.mark.slow
def test_recipe_trains_through_the_cli(
    recipe: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(recipe["files"].parent / "cache"))
    out = recipe["files"].parent / "out"
    argv = ["train", *(f"--{k}={v}" for k, v in recipe.items()), "--fout", str(out)]
    code = main(argv)
    printed, err = capsys.readouterr()
    assert code == 0, err
    notes = [line[len("note: ") :] for line in err.splitlines() if line.startswith("note: ")]
    _check_notes(notes)
    assert "UserWarning" not in err  # each said once, as a note
    assert len([line for line in err.splitlines() if line.startswith("epoch ")]) == 2
    bundle = out / "bundle"
    assert f"bundle: {bundle}" in printed.splitlines()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["backend"] == "keras"
    # saved by tf_keras (Keras 3 cannot load it), exported to ONNX through tf2onnx
    assert (manifest["format"], manifest["onnx"]) == ("tf_keras", "model.onnx")
    assert (bundle / "model_source.py").read_text() == KERAS_MODEL_PY
    assert not {"run", "event", "luminosityBlock"} & set(manifest["inputs"])
    scores = load_bundle(bundle).predict(str(recipe["files"].parent / "data" / "signal_0.root"))
    assert scores.shape == (1500,)
    assert 0.0 <= scores.min() <= scores.max() <= 1.0


@pytest.mark.slow
def test_recipe_trains_through_the_in_process_client(
    recipe: dict[str, Path], isolated: Path
) -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        spec, notes = from_mlaas4hep(*(recipe[k] for k in ("files", "labels", "model", "params")))
    assert [str(w.message) for w in record] == notes  # the ignored or unsupported keys
    assert sorted(n.split("'")[1] for n in notes) == ["hist", "nevts", "verbose"]
    client = Client(transport="in-process")
    try:
        job = client.submit(spec, name="mlaas4hep-recipe")
        done = client.wait(job["id"], timeout=600)
        assert done["state"] == "succeeded", (done["error"], client.logs(job["id"]))
        events = client.events(job["id"])
    finally:
        client.close()
    _check_notes([e["message"] for e in events if e["type"] == "note"])
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]
    assert 0.0 <= done["metrics"]["auc"] <= 1.0


@pytest.mark.parametrize(
    ("source", "idioms"),
    [
        (
            "import tensorflow as tf\n\n\ndef model(idim):\n"
            "    net = tf.keras.Sequential([tf.keras.layers.Dense(1, input_dim=idim)])\n"
            "    net.compile(optimizer=tf.keras.optimizers.SGD(lr=0.1), loss='mse')\n"
            "    return net\n",
            ["Dense(input_dim=...) at line 5", "SGD(lr=...) at line 6"],
        ),
        (
            "from tensorflow.keras.layers import Dense\n"
            "from tensorflow.keras.models import Sequential\n"
            "from tensorflow.keras.optimizers import Adam\n\n\ndef model(idim):\n"
            "    import keras\n"
            "    net = Sequential([keras.Input(shape=(idim,)), Dense(1)])\n"
            "    net.compile(optimizer=Adam(lr=0.01), loss='mse')\n"
            "    return net\n",
            ["Adam(lr=...) at line 9"],
        ),
    ],
)
def test_every_import_of_keras_in_a_keras2_file_gives_tf_keras(
    tmp_path: Path, source: str, idioms: list[str]
) -> None:
    path = tmp_path / "legacy.py"
    path.write_text(source)
    fn, note = load_model_file(path)
    assert note is not None
    assert note.startswith(f"legacy.py is Keras 2 code ({', '.join(idioms)}): running it with")
    net = fn(4)
    assert type(net).__module__.startswith("tf_keras")
    assert type(net.optimizer).__module__.startswith("tf_keras")
    assert net(np.zeros((2, 4), np.float32)).shape == (2, 1)


@pytest.mark.parametrize(
    "source",
    [
        # Keras 3 code (notebooks/05-mlaas4hep.ipynb's model file)
        "import keras\n\n\ndef model(idim):\n"
        "    net = keras.Sequential([keras.Input(shape=(idim,)), keras.layers.Dense(1)])\n"
        "    net.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss='mse')\n"
        "    return net\n",
        # torch's optimisers take lr=
        "import torch\n\n\ndef model(idim):\n"
        "    net = torch.nn.Linear(idim, 1)\n"
        "    torch.optim.Adam(net.parameters(), lr=0.01)\n"
        "    return net\n",
    ],
)
def test_keras3_and_torch_files_run_as_they_are(tmp_path: Path, source: str) -> None:
    path = tmp_path / "current.py"
    path.write_text(source)
    fn, note = load_model_file(path)
    assert note is None
    assert not type(fn(3)).__module__.startswith("tf_keras")
