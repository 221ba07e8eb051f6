"""The contract between the training runner and the ML libraries.

The runner (:mod:`.runner`) owns the epoch loop, validation, early stopping,
checkpoints, events and bundles; a backend only knows how to train one epoch,
predict, save and export its model. That keeps one implementation of the loop
for PyTorch, Keras and the BDT.

Scores returned by :meth:`Backend.predict` are final: probabilities of class 1
``(n,)`` for binary tasks, class probabilities ``(n, k)`` for multi-class, and
values ``(n,)`` for regression, in the target's own units: a neural-network backend
trains on the target standardised with :attr:`ModelContext.target_scale` and restores
it in its scores, its native model (manifest ``target_scale``) and its ONNX graph.

Backends are plug-ins: a class named by an entry point of the group
``mlaas_jupyter.backends`` (this package declares ``torch``, ``keras`` and ``sklearn``),
built as ``cls(model_spec, context, train_config)``. This module never imports them by
name, so a backend module may import this one without a circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import SpecError, TrainingError
from ..specs.training import ModelSpec, TrainConfig
from ..stream.batches import BatchStream
from ..stream.layout import FeatureLayout

__all__ = [
    "ENTRY_POINT_GROUP",
    "Backend",
    "ModelContext",
    "backend_names",
    "make_backend",
    "scale_fields",
    "target_scale_of",
]


@dataclass(frozen=True)
class ModelContext:
    """What a model needs to know about its data."""

    layout: FeatureLayout
    task: str  # "binary" | "multiclass" | "regression"
    n_classes: int  # 1 for binary and regression
    seed: int
    #: regression: (mean, std) of the training target; scores are ``out * std + mean``
    target_scale: tuple[float, float] | None = None

    @property
    def idim(self) -> int:
        return self.layout.width


def scale_fields(scale: tuple[float, float] | None) -> dict[str, Any]:
    """The manifest field of a target scale: ``{"target_scale": {"mean", "std"}}``."""
    return {"target_scale": {"mean": scale[0], "std": scale[1]}} if scale else {}


def target_scale_of(fields: Any) -> tuple[float, float] | None:
    """The ``(mean, std)`` of a manifest's (or checkpoint's) ``target_scale``, or None."""
    scale = fields.get("target_scale") if isinstance(fields, Mapping) else None
    if not isinstance(scale, dict):
        return None
    return float(scale["mean"]), float(scale["std"])


class Backend(Protocol):
    """One model being trained by one ML library."""

    kind: str  # "torch" | "keras" | "sklearn"
    epochless: bool  # True: fit() once instead of train_epoch() per epoch (the BDT)
    device: str  # where it trains, e.g. "cpu" or "cuda:0"
    notes: list[str]  # messages for the user (e.g. how many events the BDT used)

    def train_epoch(self, batches: BatchStream) -> float:
        """Train over one pass of ``batches``; return the mean weighted training loss
        (a regression's in the target's units, as the validation loss: a loss of the
        standardised target is scaled back, e.g. a mean squared error times std²)."""
        ...

    def fit(self, train: BatchStream, validation: BatchStream | None) -> float:
        """Epochless backends: train once; return the training loss."""
        ...

    def predict(self, x: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, Any]:
        """Final scores for a ``(n, idim)`` float32 matrix (see module docstring)."""
        ...

    def save_checkpoint(self, path: Path) -> None:
        """Model and optimiser state, enough to resume training."""
        ...

    def load_checkpoint(self, path: Path) -> None: ...

    def save_native(self, directory: Path) -> dict[str, Any]:
        """Write the model in the library's own format; return manifest fields
        (at least ``{"native": FILE_NAME, "format": ...}``)."""
        ...

    def export_onnx(self, path: Path) -> bool:
        """Write an ONNX model (input ``x`` float32 ``(n, idim)``, output ``score`` with
        the same final scores as :meth:`predict`); ``False`` when not possible."""
        ...


#: the entry-point group of training backends (ModelSpec.resolved_backend names one)
ENTRY_POINT_GROUP = "mlaas_jupyter.backends"


def backend_names() -> list[str]:
    """The names of the installed training backends (nothing is imported)."""
    return sorted({point.name for point in entry_points(group=ENTRY_POINT_GROUP)})


def make_backend(model: ModelSpec, context: ModelContext, config: TrainConfig) -> Backend:
    """The backend for ``model``: the class the ``mlaas_jupyter.backends`` entry point
    of its name (:attr:`ModelSpec.resolved_backend`) points to, built as
    ``cls(model, context, config)``; only that backend's library is imported.

    Raises
    ------
    SpecError
        ``model.backend`` names no installed backend (the message lists them).
    TrainingError
        The backend's module cannot be imported (its library is missing or broken).
    """
    name = model.resolved_backend
    points = {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}
    point = points.get(name)
    if point is None:
        installed = ", ".join(sorted(points)) or "none"
        raise SpecError(
            "model.backend", f"unknown training backend {name!r}; installed backends: {installed}"
        )
    try:
        cls = point.load()
    except ImportError as err:
        raise TrainingError(
            f"the {name} training backend ({point.value}) cannot be imported: {err}"
        ) from err
    backend: Backend = cls(model, context, config)
    return backend
