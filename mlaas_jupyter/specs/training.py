"""`TrainSpec`: a dataset, a model and the training settings, from one YAML file.

::

    dataset: {...}                 # a DatasetSpec (see mlaas_jupyter.specs.dataset)
    model:
      name: mlp                    # mlp | deepsets | bdt, or
      file: my_model.py            # a file defining model(idim) (MLaaS4HEP contract)
      params: {sizes: [64, 64], dropout: 0.1}
      backend: torch               # a training backend: torch | keras | sklearn | a plug-in
    training:
      epochs: 10
      batch_size: 1024             # unset: 1024, fewer when the training split is small
      learning_rate: 0.001
      early_stopping: 3            # patience in epochs; null (or false) switches it off
      device: auto                 # auto | cpu | cuda
      loader: auto                 # auto | thread | process (auto: a process for torch/keras)
      epoch_cache_mb: 1024         # keep a split this small in memory after epoch 1; 0: never
      folds: 2                     # k-fold: k models, each tested on its fold (value % k)
      fold_by: event               # the integer branch of the fold; unset: the entry number
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    BeforeValidator,
    Field,
    Strict,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from ..errors import SpecError
from ._base import SpecModel, field_error, load_mapping
from ._types import Count, Flag, Location, NonNegative, Number, Text, choice
from .cluster import ClusterSpec
from .dataset import DatasetSpec
from .report import ReportSettings

__all__ = ["BUILTINS", "ModelSpec", "TrainConfig", "TrainSpec", "detect_file_backend"]

Optimizer = Literal["adam", "adamw", "sgd"]
Device = Literal["auto", "cpu", "cuda"]
Loader = Literal["auto", "process", "thread"]
#: the batch size when none is given, and how it shrinks for small training splits
AUTO_BATCH, AUTO_MIN_STEPS, AUTO_MIN_BATCH = 1024, 16, 32
#: the models that need no file
BUILTINS = ("mlp", "deepsets", "bdt")

_PLAIN_DATA = (str, int, float, bool, list, dict, tuple)


def _backend_name(value: Any) -> Any:
    if isinstance(value, str):
        name = value.strip().lower()
        return "torch" if name == "pytorch" else name
    return value


#: a training backend: the name of a ``mlaas_jupyter.backends`` entry point (plug-ins
#: may add names, so the set is not fixed here; an unknown one fails when training starts)
BackendName = Annotated[
    Text,
    BeforeValidator(_backend_name),
    WithJsonSchema({"type": "string", "minLength": 1, "examples": ["torch", "keras", "sklearn"]}),
]


def detect_file_backend(path: str | Path) -> str | None:
    """Guess ``"torch"`` or ``"keras"`` from a model file's imports (``None``: unsure)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    torch = re.search(r"^\s*(import|from)\s+torch\b", text, re.M) is not None
    keras = re.search(r"^\s*(import|from)\s+(keras|tensorflow|tf_keras)\b", text, re.M) is not None
    return "torch" if torch and not keras else "keras" if keras and not torch else None


class ModelSpec(SpecModel):
    """Which model to train: a built-in by ``name``, a model ``file``, or (from
    Python only) an ``instance``, a Keras model or ``torch.nn.Module`` object."""

    spec_root = "model"

    name: Annotated[Text, WithJsonSchema({"type": "string", "enum": list(BUILTINS)})] | None = (
        Field(default="mlp", description="a built-in model (without file)")
    )
    file: Location | None = Field(default=None, description="a Python file defining model(idim)")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments")
    backend: BackendName | None = Field(
        default=None, description="default: sklearn for bdt, else torch or keras from the model"
    )
    instance: SkipJsonSchema[Any] = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _name_or_file(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        if data.get("file") is not None or data.get("instance") is not None:
            if "name" not in data:
                return {**data, "name": None}
            if data["name"] is not None:
                raise field_error("name", "give a built-in name or a model file, not both")
        return data

    @field_validator("instance")
    @classmethod
    def _python_object(cls, value: Any) -> Any:
        if value is not None and isinstance(value, _PLAIN_DATA):
            raise PydanticCustomError(
                "instance",
                "expected a model object given from Python, got {given}",
                {"given": repr(value)},
            )
        return value

    @model_validator(mode="after")
    def _known_model(self) -> Self:
        if self.instance is None and self.file is None and self.name not in BUILTINS:
            raise field_error(
                "name",
                f"got {self.name!r}; built-in models are {', '.join(BUILTINS)} "
                "(or give a model file)",
            )
        return self

    @property
    def resolved_backend(self) -> str:
        """The backend given, or the one the model implies."""
        if self.backend is not None:
            return self.backend
        if self.file is None and self.instance is None and self.name == "bdt":
            return "sklearn"
        if self.instance is not None:
            module = type(self.instance).__module__
            return "keras" if module.startswith(("keras", "tf_keras")) else "torch"
        if self.file is not None:
            detected = detect_file_backend(self.file)
            return "keras" if detected == "keras" else "torch"
        return "torch"

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | Path | None = None) -> ModelSpec:
        """The ``model:`` section; a relative ``file`` is taken from ``base_dir``."""
        return cls.parse(data, context={"base_dir": base_dir})

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return data


def _off(value: Any) -> Any:
    return None if value is False or (type(value) is int and value == 0) else value


PlotStyle = Literal["ALICE", "ATLAS", "CMS", "LHCb", "none"]
_STYLES = {name.lower(): name for name in get_args(PlotStyle)}


class TrainConfig(SpecModel):
    """How to train: epochs, batches, optimiser, stopping, device, output."""

    spec_root = "training"

    epochs: Count = 10
    batch_size: Count | None = Field(
        default=None,
        description="events per optimiser step; unset: 1024, or fewer when the training "
        "split is small, so that an epoch has at least 16 steps (and a batch 32 events)",
    )
    learning_rate: Annotated[Number, Field(gt=0)] = 1e-3
    optimizer: Annotated[Optimizer, choice(Optimizer)] = "adam"
    early_stopping: Annotated[Count | None, BeforeValidator(_off)] = Field(
        default=3, description="patience in epochs; null, false or 0: off"
    )
    min_delta: Number = 1e-4
    device: Annotated[Device, choice(Device)] = "auto"
    threads: Count | None = None
    loader: Annotated[Loader, choice(Loader)] = Field(
        default="auto", description="auto: a loader process for torch and keras"
    )
    epoch_cache_mb: NonNegative = Field(
        default=1024, description="MB per split kept in memory after its first epoch; 0: never"
    )
    bdt_max_events: Count = 200_000
    workers: Count = Field(
        default=1,
        description="data-parallel training processes (torch DistributedDataParallel); "
        "on the job's cluster when it has one, else local processes",
    )
    ddp_timeout: Annotated[Number, Field(gt=0)] = Field(
        default=300.0,
        description="seconds a data-parallel rank waits for the others (at the "
        "rendezvous, in a collective, for the cluster's workers) before the job fails",
    )
    style: Annotated[PlotStyle, choice(PlotStyle, _STYLES)] | None = Field(
        default=None,
        description="experiment style of the plots (CMS, ATLAS, LHCb, ALICE, none); "
        "unset: the server's c.Mlaas.plot_style",
    )
    report: ReportSettings = Field(
        default_factory=ReportSettings,
        description="the training report (report.json): overtraining threshold, events used",
    )
    output: Text = Field(default="runs", description="folder of the run folders")
    name: Text | None = Field(default=None, description="name of the run and of the model")
    resume: Flag = False
    folds: Annotated[int, Strict(), Field(ge=1, le=10)] = Field(
        default=1,
        description="k-fold training: k models, each tested on the events of its fold "
        "(value % k); 1: off, at most 10",
    )
    fold_by: Text | None = Field(
        default=None,
        description="the integer branch whose value % folds is an event's fold (e.g. "
        "event); unset: the entry number of the event in its file",
    )

    @model_validator(mode="after")
    def _fold_by_needs_folds(self) -> Self:
        if self.fold_by is not None and self.folds < 2:
            raise field_error("fold_by", "k-fold training only: set folds (2 to 10) as well")
        return self

    def batch_for(self, train_events: int) -> int:
        """The batch size of a training split of ``train_events`` events: the one given,
        else 1024 lowered so that an epoch has at least 16 optimiser steps (a few thousand
        events at 1024 a batch give a handful of steps, too few to converge in 5 epochs)."""
        if self.batch_size is not None:
            return self.batch_size
        return max(AUTO_MIN_BATCH, min(AUTO_BATCH, train_events // AUTO_MIN_STEPS))

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        """The ``training:`` section."""
        return cls.parse(data)


class TrainSpec(SpecModel):
    """Everything a training run needs; what the CLI, REST API and magics submit."""

    dataset: DatasetSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    training: TrainConfig = Field(default_factory=TrainConfig)
    cluster: ClusterSpec | None = Field(
        default=None,
        description="the dask cluster of the statistics pass and data-parallel training",
    )
    notes: tuple[Text, ...] = Field(
        default=(),
        description="what the translation of another tool's inputs (MLaaS4HEP's params.json) "
        "did with each of them; shown as note events when the run starts",
    )

    @model_validator(mode="before")
    @classmethod
    def _has_dataset(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("dataset") is None:
            raise field_error("dataset", "missing: describe the files, classes and branches")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | Path | None = None) -> TrainSpec:
        """The spec of a YAML/JSON mapping; relative paths are taken from ``base_dir``."""
        if not isinstance(data, Mapping):
            raise SpecError("spec", f"expected a mapping, got {type(data).__name__} {data!r}")
        return cls.parse(data, context={"base_dir": base_dir})

    @classmethod
    def from_file(cls, path: str | Path) -> TrainSpec:
        """Load a YAML or JSON spec; relative paths are taken from its folder."""
        path = Path(path)
        return cls.from_dict(load_mapping(path), path.parent)

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form that :meth:`from_dict` turns back into an equal spec
        (a model ``instance`` is not part of it)."""
        return {
            "dataset": self.dataset.to_dict(),
            "model": self.model.to_dict(),
            "training": self.training.model_dump(mode="json"),
            **({"cluster": self.cluster.to_dict()} if self.cluster is not None else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
        }

    def with_training(self, **changes: Any) -> TrainSpec:
        """A validated copy with these ``training`` settings changed."""
        return self.model_copy(update={"training": self.training.model_copy(update=changes)})
