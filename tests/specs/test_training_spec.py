"""TrainSpec, ModelSpec, TrainConfig: field errors, YAML-friendly values, paths, round
trips, validated copies, pickling and the JSON Schema of the user's form."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.specs import BUILTINS, ModelSpec, TrainConfig, TrainSpec

DATASET: dict[str, Any] = {"classes": {"bkg": ["/d/bkg.root"], "sig": ["/d/sig.root"]}}


def train_error(data: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        TrainSpec.from_dict(data)
    return info.value


@pytest.mark.parametrize(
    ("training", "field", "message"),
    [
        ({"epochs": "ten"}, "training.epochs", "expected an integer, got 'ten'"),
        ({"epochs": True}, "training.epochs", "expected an integer, got True"),
        ({"epochs": 2.5}, "training.epochs", "expected an integer, got 2.5"),
        ({"epochs": 0}, "training.epochs", "must be >= 1, got 0"),
        ({"batch_size": -4}, "training.batch_size", "must be >= 1, got -4"),
        ({"learning_rate": 0}, "training.learning_rate", "must be > 0, got 0"),
        ({"learning_rate": "fast"}, "training.learning_rate", "expected a number, got 'fast'"),
        ({"learning_rate": False}, "training.learning_rate", "expected a number, got False"),
        (
            {"optimizer": "rmsprop"},
            "training.optimizer",
            "got 'rmsprop'; allowed values are adam, adamw, sgd",
        ),
        ({"device": "gpu"}, "training.device", "got 'gpu'; allowed values are auto, cpu, cuda"),
        ({"loader": 1}, "training.loader", "got 1; allowed values are auto, process, thread"),
        ({"early_stopping": True}, "training.early_stopping", "expected an integer, got True"),
        ({"early_stopping": -1}, "training.early_stopping", "must be >= 1, got -1"),
        ({"epoch_cache_mb": -1}, "training.epoch_cache_mb", "must be >= 0, got -1"),
        ({"threads": 0}, "training.threads", "must be >= 1, got 0"),
        ({"resume": "yes"}, "training.resume", "expected true or false, got 'yes'"),
        ({"resume": 1}, "training.resume", "expected true or false, got 1"),
        ({"output": ""}, "training.output", "expected a non-empty string, got ''"),
        (
            {"epoch": 3},
            "training.epoch",
            "unknown field; did you mean epochs? allowed fields are batch_size, "
            "bdt_max_events, ddp_timeout, device, early_stopping, epoch_cache_mb, epochs, "
            "fold_by, folds, learning_rate, loader, min_delta, name, optimizer, output, "
            "report, resume, style, threads, workers",
        ),
    ],
)
def test_training_errors_name_the_field(training: dict[str, Any], field: str, message: str) -> None:
    err = train_error({"dataset": DATASET, "training": training})
    assert err.field == field
    assert str(err) == f"{field}: {message}"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"model": {"name": "mlp"}},
            "dataset",
            "missing: describe the files, classes and branches",
        ),
        ([1, 2], "spec", "expected a mapping, got list [1, 2]"),
        (
            {"dataset": DATASET, "optimiser": {}},
            "optimiser",
            "allowed fields are cluster, dataset, model",
        ),
        ({"dataset": [1]}, "dataset", "expected a mapping, got list [1]"),
        ({"dataset": DATASET, "training": 3}, "training", "expected a mapping, got int 3"),
        (
            {"dataset": {**DATASET, "jagged": {"Jet_*": {"length": "longest"}}}},
            "dataset.jagged.Jet_*.length",
            "got 'longest'; allowed values are max, quantile",
        ),
        (
            {"dataset": {"classes": {"sig": {"files": "s.root", "weight": -1}, "bkg": "b"}}},
            "dataset.classes.sig.weight",
            "must be > 0, got -1.0",
        ),
        (
            {"dataset": DATASET, "model": {"name": "resnet"}},
            "model.name",
            "got 'resnet'; built-in models are mlp, deepsets, bdt",
        ),
        (
            {"dataset": DATASET, "model": {"name": "mlp", "file": "m.py"}},
            "model.name",
            "give a built-in name or a model file, not both",
        ),
        ({"dataset": DATASET, "model": {"params": [64]}}, "model.params", "expected a mapping"),
        (
            {"dataset": DATASET, "model": {"layers": 3}},
            "model.layers",
            "unknown field; allowed fields are backend, file, name, params",
        ),
        ({"dataset": DATASET, "model": {"file": 7}}, "model.file", "expected a non-empty string"),
        (
            {"dataset": DATASET, "model": {"instance": "net"}},
            "model.instance",
            "expected a model object given from Python, got 'net'",
        ),
    ],
)
def test_spec_errors_name_the_dotted_field(data: Any, field: str, message: str) -> None:
    err = train_error(data)
    assert err.field == field
    assert message in str(err)


def test_defaults() -> None:
    spec = TrainSpec.from_dict({"dataset": DATASET})
    assert spec.model == ModelSpec(name="mlp", params={})
    assert spec.model.resolved_backend == "torch"
    config = spec.training
    assert (config.epochs, config.batch_size, config.learning_rate) == (10, None, 1e-3)
    assert (config.optimizer, config.device, config.loader) == ("adam", "auto", "auto")
    assert (config.early_stopping, config.min_delta, config.threads) == (3, 1e-4, None)
    assert (config.epoch_cache_mb, config.bdt_max_events) == (1024, 200_000)
    assert (config.output, config.name, config.resume) == ("runs", None, False)
    assert config == TrainConfig()
    assert BUILTINS == ("mlp", "deepsets", "bdt")
    assert ModelSpec(name="bdt").resolved_backend == "sklearn"


def test_yaml_friendly_values() -> None:
    text = (
        "learning_rate: 1e-3\n"  # a string for YAML 1.1: read as the number it means
        "optimizer: AdamW\n"
        "device: CPU\n"
        "early_stopping: false\n"
    )
    config = TrainConfig.from_dict(yaml.safe_load(text))
    assert config.learning_rate == pytest.approx(1e-3)
    assert (config.optimizer, config.device, config.early_stopping) == ("adamw", "cpu", None)
    assert TrainConfig.from_dict({"early_stopping": None}).early_stopping is None
    assert TrainConfig.from_dict({"early_stopping": 0}).early_stopping is None
    assert TrainConfig.from_dict({"min_delta": 0}).min_delta == 0.0
    assert ModelSpec.from_dict({"backend": " PyTorch "}).backend == "torch"
    assert ModelSpec.from_dict({"backend": "jax"}).backend == "jax"  # a plug-in name
    with pytest.raises(SpecError, match=r"^training\.learning_rate: expected a number, got '1e'"):
        TrainConfig.from_dict({"learning_rate": "1e"})


def test_relative_paths_from_base_dir_and_file(tmp_path: Path) -> None:
    data = {
        "dataset": {"classes": {"a": "a.root", "b": ["/abs/b.root"]}},
        "model": {"file": "nets/model.py", "params": {"hidden": 8}},
    }
    spec = TrainSpec.from_dict(data, base_dir=tmp_path)
    assert spec.model.file == str(tmp_path / "nets" / "model.py")
    assert spec.model.name is None
    assert spec.dataset.classes[0].files == (str(tmp_path / "a.root"),)
    assert spec.dataset.classes[1].files == ("/abs/b.root",)
    assert TrainSpec.from_dict(data).model.file == "nets/model.py"
    path = tmp_path / "specs" / "train.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    from_file = TrainSpec.from_file(path)
    assert from_file.model.file == str(path.parent / "nets" / "model.py")
    assert from_file.dataset.classes[0].files == (str(path.parent / "a.root"),)
    (path.parent / "nets").mkdir()
    (path.parent / "nets" / "model.py").write_text("import keras\n")
    assert from_file.model.resolved_backend == "keras"


def test_round_trip_and_plain_data(tmp_path: Path) -> None:
    data = {
        "dataset": {**DATASET, "cuts": ["nJet >= 2"], "split": {"train": 0.7, "test": 0.1}},
        "model": {"name": "deepsets", "params": {"phi": [16, 16]}, "backend": "keras"},
        "training": {"epochs": 3, "early_stopping": None, "name": "toy", "threads": 2},
    }
    spec = TrainSpec.from_dict(data)
    plain = spec.to_dict()
    assert TrainSpec.from_dict(plain) == spec
    assert json.loads(json.dumps(plain)) == plain
    assert plain["training"]["early_stopping"] is None  # off stays off
    assert plain["model"] == {"name": "deepsets", "params": {"phi": [16, 16]}, "backend": "keras"}
    assert plain["dataset"]["split"]["validation"] == pytest.approx(0.2)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(plain))
    assert TrainSpec.from_file(path) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_copies_are_validated() -> None:
    spec = TrainSpec.from_dict({"dataset": DATASET})
    longer = spec.with_training(epochs=20, resume=True)
    assert (longer.training.epochs, longer.training.resume) == (20, True)
    assert spec.training.epochs == 10
    with pytest.raises(SpecError, match=r"^training\.epochs: must be >= 1, got 0$"):
        spec.with_training(epochs=0)
    with pytest.raises(SpecError, match=r"^training\.device: got 'tpu'; allowed values"):
        TrainConfig(device="tpu")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^model\.name: got 'cnn'; built-in models"):
        spec.model.model_copy(update={"name": "cnn"})
    with pytest.raises(SpecError, match=r"^model\.name: got 'cnn'"):
        ModelSpec(name="cnn")


def test_model_instance_is_python_only() -> None:
    class Net:
        pass

    net = Net()
    spec = TrainSpec.from_dict({"dataset": DATASET})
    with_net = spec.model_copy(update={"model": ModelSpec(name=None, instance=net)})
    assert with_net.model.instance is net
    assert with_net.model.resolved_backend == "torch"
    assert with_net.to_dict()["model"] == {"params": {}}
    assert "instance" not in TrainSpec.model_json_schema()["$defs"]["ModelSpec"]["properties"]
    assert "instance" not in repr(with_net.model)


def test_json_schema_is_the_yaml_form() -> None:
    schema = TrainSpec.model_json_schema()
    assert schema["required"] == ["dataset"]
    assert set(schema["properties"]) == {"cluster", "dataset", "model", "notes", "training"}
    defs = schema["$defs"]
    dataset = defs["DatasetSpec"]["properties"]
    assert dataset["classes"]["type"] == "object"
    assert dataset["classes"]["additionalProperties"] == {"$ref": "#/$defs/ClassFiles"}
    assert dataset["jagged"]["additionalProperties"] == {"$ref": "#/$defs/JaggedSpec"}
    training = defs["TrainConfig"]["properties"]
    assert training["optimizer"]["enum"] == ["adam", "adamw", "sgd"]
    assert training["epochs"] == {"default": 10, "minimum": 1, "title": "Epochs", "type": "integer"}
    assert defs["TrainConfig"]["additionalProperties"] is False
    model = defs["ModelSpec"]["properties"]
    assert set(model) == {"name", "file", "params", "backend"}
    assert model["name"]["anyOf"][0]["enum"] == list(BUILTINS)


@pytest.mark.parametrize(
    ("given", "events", "batch"),
    [
        (None, 80_000, 1024),
        (None, 16_384, 1024),
        (None, 2_700, 168),
        (None, 100, 32),
        (256, 100, 256),
    ],
)
def test_batch_for_small_training_splits(given: int | None, events: int, batch: int) -> None:
    """Unset, the batch is 1024, lowered so that an epoch has at least 16 steps."""
    assert TrainConfig(batch_size=given).batch_for(events) == batch
