"""The contract between the training runner and the ML libraries.

The runner (:mod:`.runner`) owns the epoch loop, validation, early stopping,
checkpoints, events and bundles; a backend only knows how to train one epoch,
predict, save and export its model. That keeps one implementation of the loop
for PyTorch, Keras and the BDT.

Scores returned by :meth:`Backend.predict` are final: probabilities of class 1
``(n,)`` for binary tasks, class probabilities ``(n, k)`` for multi-class, and
values ``(n,)`` for regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..stream.batches import BatchStream
from ..stream.layout import FeatureLayout
from .spec import ModelSpec, TrainConfig

__all__ = ["Backend", "ModelContext", "make_backend"]


@dataclass(frozen=True)
class ModelContext:
    """What a model needs to know about its data."""

    layout: FeatureLayout
    task: str  # "binary" | "multiclass" | "regression"
    n_classes: int  # 1 for binary and regression
    seed: int

    @property
    def idim(self) -> int:
        return self.layout.width


class Backend(Protocol):
    """One model being trained by one ML library."""

    kind: str  # "torch" | "keras" | "sklearn"
    epochless: bool  # True: fit() once instead of train_epoch() per epoch (the BDT)
    device: str  # where it trains, e.g. "cpu" or "cuda:0"
    notes: list[str]  # messages for the user (e.g. how many events the BDT used)

    def train_epoch(self, batches: BatchStream) -> float:
        """Train over one pass of ``batches``; return the mean weighted training loss."""
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


def make_backend(model: ModelSpec, context: ModelContext, config: TrainConfig) -> Backend:
    """The backend for ``model``; imports only the library it needs."""
    kind = model.resolved_backend
    if kind == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend(model, context, config)
    if kind == "keras":
        from .keras_backend import KerasBackend

        return KerasBackend(model, context, config)
    from .sklearn_backend import SklearnBackend

    return SklearnBackend(model, context, config)
