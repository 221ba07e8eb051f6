"""`TrainSpec`: a dataset, a model and the training settings, from one YAML file.

::

    dataset: {...}                 # a DatasetSpec (see mlaas_jupyter.stream.spec)
    model:
      name: mlp                    # mlp | deepsets | bdt, or
      file: my_model.py            # a file defining model(idim) (MLaaS4HEP contract)
      params: {sizes: [64, 64], dropout: 0.1}
      backend: torch               # torch | keras (default: torch for built-ins)
    training:
      epochs: 10
      batch_size: 1024
      learning_rate: 0.001
      early_stopping: 3            # patience in epochs; null switches it off
      device: auto                 # auto | cpu | cuda
      loader: auto                 # auto | thread | process (auto: a process for torch/keras)
      epoch_cache_mb: 1024         # keep a split this small in memory after epoch 1; 0: never
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import SpecError
from ..stream._validate import (
    as_choice,
    as_float,
    as_int,
    as_mapping,
    as_str,
    check_keys,
    load_mapping,
)
from ..stream.spec import DatasetSpec

__all__ = ["ModelSpec", "TrainConfig", "TrainSpec"]

Backend = Literal["torch", "keras", "sklearn"]
BUILTINS = ("mlp", "deepsets", "bdt")
_BACKENDS: dict[str, Backend] = {
    "torch": "torch",
    "pytorch": "torch",
    "keras": "keras",
    "sklearn": "sklearn",
}


@dataclass(frozen=True)
class ModelSpec:
    """Which model to train: a built-in by ``name``, a model ``file``, or an ``instance``."""

    name: str | None = "mlp"
    file: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    backend: Backend | None = None
    instance: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.instance is None and self.file is None and self.name not in BUILTINS:
            raise SpecError(
                "model.name", f"got {self.name!r}; built-in models are {', '.join(BUILTINS)}"
            )

    @property
    def resolved_backend(self) -> Backend:
        if self.backend is not None:
            return self.backend
        if self.file is None and self.instance is None and self.name == "bdt":
            return "sklearn"
        if self.instance is not None:
            module = type(self.instance).__module__
            return "keras" if module.startswith(("keras", "tf_keras")) else "torch"
        if self.file is not None:
            from .models import detect_file_backend

            detected = detect_file_backend(self.file)
            return "keras" if detected == "keras" else "torch"
        return "torch"

    @classmethod
    def from_dict(cls, data: Any, base_dir: Path | None = None) -> ModelSpec:
        data = as_mapping("model", data)
        check_keys("model", data, ["name", "file", "params", "backend"])
        file = data.get("file")
        if file is not None:
            file = as_str("model.file", file)
            if base_dir is not None and not Path(file).is_absolute():
                file = str(base_dir / file)
        backend = data.get("backend")
        return cls(
            name=None if file else as_str("model.name", data.get("name", "mlp")),
            file=file,
            params=dict(as_mapping("model.params", data.get("params", {}))),
            backend=None if backend is None else as_choice("model.backend", backend, _BACKENDS),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"params": dict(self.params)}
        if self.file is not None:
            out["file"] = self.file
        else:
            out["name"] = self.name
        if self.backend is not None:
            out["backend"] = self.backend
        return out


@dataclass(frozen=True)
class TrainConfig:
    """How to train: epochs, batches, optimiser, stopping, device, output."""

    epochs: int = 10
    batch_size: int = 1024
    learning_rate: float = 1e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    early_stopping: int | None = 3
    min_delta: float = 1e-4
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = None
    loader: Literal["auto", "thread", "process"] = "auto"
    #: MB per split (train, validation) kept in memory after its first epoch
    epoch_cache_mb: int = 1024
    bdt_max_events: int = 200_000
    output: str = "runs"
    name: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise SpecError("training.epochs", f"must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise SpecError("training.batch_size", f"must be >= 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise SpecError("training.learning_rate", f"must be > 0, got {self.learning_rate}")

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        data = as_mapping("training", data)
        check_keys("training", data, [f for f in cls.__dataclass_fields__])
        kwargs: dict[str, Any] = {}
        for key in ("epochs", "batch_size", "bdt_max_events"):
            if key in data:
                kwargs[key] = as_int(f"training.{key}", data[key], minimum=1)
        for key in ("learning_rate", "min_delta"):
            if key in data:
                kwargs[key] = as_float(f"training.{key}", data[key])
        if "optimizer" in data:
            kwargs["optimizer"] = as_choice(
                "training.optimizer", data["optimizer"], {k: k for k in ("adam", "adamw", "sgd")}
            )
        if "device" in data:
            kwargs["device"] = as_choice(
                "training.device", data["device"], {k: k for k in ("auto", "cpu", "cuda")}
            )
        if "loader" in data:
            kwargs["loader"] = as_choice(
                "training.loader", data["loader"], {k: k for k in ("auto", "thread", "process")}
            )
        if "early_stopping" in data:
            value = data["early_stopping"]
            kwargs["early_stopping"] = (
                None
                if value in (None, False)
                else as_int("training.early_stopping", value, minimum=1)
            )
        if "epoch_cache_mb" in data:
            kwargs["epoch_cache_mb"] = as_int(
                "training.epoch_cache_mb", data["epoch_cache_mb"], minimum=0
            )
        if data.get("threads") is not None:
            kwargs["threads"] = as_int("training.threads", data["threads"], minimum=1)
        for key in ("output", "name"):
            if data.get(key) is not None:
                kwargs[key] = as_str(f"training.{key}", data[key])
        if "resume" in data:
            if not isinstance(data["resume"], bool):
                raise SpecError(
                    "training.resume", f"expected true or false, got {data['resume']!r}"
                )
            kwargs["resume"] = data["resume"]
        return cls(**kwargs)


@dataclass(frozen=True)
class TrainSpec:
    """Everything a training run needs; what the CLI, REST API and magics submit."""

    dataset: DatasetSpec
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | Path | None = None) -> TrainSpec:
        data = as_mapping("spec", data)
        check_keys("", data, ["dataset", "model", "training"])
        if "dataset" not in data:
            raise SpecError("dataset", "missing: describe the files, classes and branches")
        base = Path(base_dir) if base_dir is not None else None
        return cls(
            DatasetSpec.from_dict(as_mapping("dataset", data["dataset"]), base),
            ModelSpec.from_dict(data.get("model", {}), base),
            TrainConfig.from_dict(data.get("training", {})),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> TrainSpec:
        path = Path(path)
        return cls.from_dict(load_mapping(path), path.parent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_dict(),
            "model": self.model.to_dict(),
            "training": asdict(self.training),
        }

    def with_training(self, **changes: Any) -> TrainSpec:
        return replace(self, training=replace(self.training, **changes))
