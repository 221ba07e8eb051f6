"""The built-in networks: ``mlp`` (PyTorch and Keras) and ``deepsets`` (PyTorch).

``deepsets`` is a permutation invariant network over the objects of each masked jagged
collection. This module also checks their ``model.params`` (sizes, dropout, activation,
pooling). Torch and Keras are imported inside the functions that need them, never at
import time; :mod:`.models` re-exports the builders.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from ..errors import TrainingError
from ..stream.layout import FeatureLayout

__all__ = ["build_keras_builtin", "build_torch_builtin", "builtin_params"]

_ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "silu", "leaky_relu", "sigmoid")


def _sizes(params: Mapping[str, Any], key: str, default: list[int]) -> list[int]:
    value = params.get(key, default)
    if not isinstance(value, list | tuple) or not all(isinstance(v, int) and v > 0 for v in value):
        raise TrainingError(
            f"model.params.{key} must be a list of positive integers, got {value!r}"
        )
    return [int(v) for v in value]


def _mlp_sizes(params: Mapping[str, Any]) -> list[int]:
    """The hidden layers of an ``mlp``: ``sizes``, or ``layers`` layers of ``hidden``
    units each (the one-number form a hyperparameter sweep varies)."""
    if "hidden" not in params and "layers" not in params:
        return _sizes(params, "sizes", [64, 64])
    if "sizes" in params:
        raise TrainingError("model.params: give sizes, or hidden and layers, not both")
    hidden, layers = params.get("hidden", 64), params.get("layers", 2)
    for key, value in (("hidden", hidden), ("layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TrainingError(f"model.params.{key} must be a positive integer, got {value!r}")
    return [int(hidden)] * int(layers)


_MLP_PARAMS = ("sizes", "hidden", "layers", "dropout", "activation")
_DEEPSETS_PARAMS = ("phi", "rho", "dropout", "activation", "pooling")


def builtin_params(name: str) -> tuple[str, ...] | None:
    """The ``model.params`` the built-in model ``name`` takes (None: not a built-in);
    the BDT's are those of scikit-learn's histogram gradient boosting."""
    if name == "bdt":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        keys = {*HistGradientBoostingClassifier().get_params()}
        keys |= {*HistGradientBoostingRegressor().get_params()}
        return tuple(sorted(keys - {"random_state"}))
    return {"mlp": _MLP_PARAMS, "deepsets": _DEEPSETS_PARAMS}.get(name)


def _common(params: Mapping[str, Any], allowed: tuple[str, ...]) -> tuple[float, str]:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TrainingError(f"unknown model.params {unknown}; allowed: {', '.join(allowed)}")
    dropout = float(params.get("dropout", 0.0))
    activation = str(params.get("activation", "relu"))
    if activation not in _ACTIVATIONS:
        raise TrainingError(
            f"model.params.activation: got {activation!r}; allowed: {', '.join(_ACTIVATIONS)}"
        )
    if not 0.0 <= dropout < 1.0:
        raise TrainingError(f"model.params.dropout must be in [0, 1), got {dropout}")
    return dropout, activation


def _collections(layout: FeatureLayout) -> tuple[list[int], list[tuple[list[int], list[int]]]]:
    """Flat column indices, and per masked collection (object columns, mask columns).

    Object columns are ordered object by object: ``width * members`` indices, object
    ``i`` holding column ``i`` of each member's block.
    """
    groups = [f for f in layout.features if f.kind == "mask"]
    grouped = {name for g in groups for name in g.mask_of}
    flat = [
        c
        for f in layout.features
        if f.kind != "mask" and f.name not in grouped
        for c in range(f.offset, f.offset + f.width)
    ]
    collections = []
    for group in groups:
        members = [layout.feature(name) for name in group.mask_of]
        objects = [m.offset + i for i in range(group.width) for m in members]
        collections.append((objects, list(range(group.offset, group.offset + group.width))))
    return flat, collections


@cache
def _torch_classes() -> Any:
    import torch
    from torch import nn

    acts = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "leaky_relu": nn.LeakyReLU,
        "sigmoid": nn.Sigmoid,
    }

    def mlp(sizes: list[int], n_in: int, n_out: int | None, dropout: float, act: str) -> Any:
        layers: list[Any] = []
        for size in sizes:
            layers += [nn.Linear(n_in, size), acts[act]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            n_in = size
        if n_out is not None:
            layers.append(nn.Linear(n_in, n_out))
        return nn.Sequential(*layers)

    class DeepSets(nn.Module):  # type: ignore[misc]
        """phi per object, masked sum/mean pooling per collection, rho on [flat, pooled]."""

        def __init__(self, layout: FeatureLayout, n_out: int, params: Mapping[str, Any]) -> None:
            super().__init__()
            dropout, act = _common(params, _DEEPSETS_PARAMS)
            phi_sizes = _sizes(params, "phi", [32, 32])
            rho_sizes = _sizes(params, "rho", [64, 64])
            self.pooling = str(params.get("pooling", "sum+mean"))
            if self.pooling not in ("sum", "mean", "sum+mean"):
                raise TrainingError(
                    f"model.params.pooling: got {self.pooling!r}; allowed: sum, mean, sum+mean"
                )
            flat, collections = _collections(layout)
            if not collections:
                raise TrainingError(
                    "deepsets needs at least one jagged collection with a mask "
                    "(jagged: {mask: true}); this layout has none — use mlp instead"
                )
            self.register_buffer("flat", torch.tensor(flat, dtype=torch.long))
            self.n_members = []
            self.phis = nn.ModuleList()
            pooled = 0
            for k, (objects, masks) in enumerate(collections):
                self.register_buffer(f"objects{k}", torch.tensor(objects, dtype=torch.long))
                self.register_buffer(f"masks{k}", torch.tensor(masks, dtype=torch.long))
                self.n_members.append(len(objects) // len(masks))
                self.phis.append(mlp(phi_sizes, self.n_members[-1], None, 0.0, act))
                pooled += phi_sizes[-1] * (2 if self.pooling == "sum+mean" else 1)
            self.rho = mlp(rho_sizes, len(flat) + pooled, n_out, dropout, act)

        def forward(self, x: Any) -> Any:
            parts = [x.index_select(1, self.flat)]
            for k, phi in enumerate(self.phis):
                mask = x.index_select(1, getattr(self, f"masks{k}"))  # (n, objects)
                obj = x.index_select(1, getattr(self, f"objects{k}"))
                obj = obj.reshape(-1, mask.shape[1], self.n_members[k])
                summed = (phi(obj) * mask.unsqueeze(-1)).sum(1)
                if self.pooling != "mean":
                    parts.append(summed)
                if self.pooling != "sum":
                    parts.append(summed / mask.sum(1, keepdim=True).clamp(min=1.0))
            return self.rho(torch.cat(parts, 1))

    return mlp, DeepSets


def build_torch_builtin(
    name: str, layout: FeatureLayout, n_out: int, params: Mapping[str, Any]
) -> Any:
    """A built-in PyTorch network (``mlp`` or ``deepsets``) outputting logits/values."""
    mlp, deepsets = _torch_classes()
    if name == "mlp":
        dropout, act = _common(params, _MLP_PARAMS)
        return mlp(_mlp_sizes(params), layout.width, n_out, dropout, act)
    if name == "deepsets":
        return deepsets(layout, n_out, params)
    raise TrainingError(f"model {name!r} is not a PyTorch model (built-ins: mlp, deepsets)")


def build_keras_builtin(
    name: str, layout: FeatureLayout, task: str, n_out: int, params: Mapping[str, Any]
) -> Any:
    """A built-in Keras ``mlp`` outputting probabilities (sigmoid/softmax) or values."""
    import keras

    if name != "mlp":
        raise TrainingError(
            f"model {name!r} is not available for Keras (use mlp, or backend: torch)"
        )
    dropout, act = _common(params, _MLP_PARAMS)
    layers: list[Any] = [keras.Input(shape=(layout.width,), name="x")]
    for size in _mlp_sizes(params):
        layers.append(keras.layers.Dense(size, activation=act))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    final = {"binary": "sigmoid", "multiclass": "softmax"}.get(task, "linear")
    layers.append(keras.layers.Dense(n_out, activation=final))
    return keras.Sequential(layers, name="mlp")
