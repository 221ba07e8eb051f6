"""Building models: user model files (MLaaS4HEP contract) and the built-in networks.

A model file defines ``model(idim)`` (optionally ``model(idim, **params)`` and, for
models that need to know which columns hold which objects, a ``layout`` argument)
and returns a compiled Keras model or a ``torch.nn.Module``.

Built-ins: ``mlp`` (PyTorch and Keras) and ``deepsets`` (PyTorch): a permutation
invariant network over the objects of each masked jagged collection. Torch and
Keras are imported inside the functions that need them, never at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import itertools
import logging
import re
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..stream.layout import FeatureLayout

__all__ = [
    "build_keras_builtin",
    "build_torch_builtin",
    "call_model_function",
    "check_model",
    "detect_file_backend",
    "load_model_function",
    "model_kind",
    "n_outputs",
    "quiet",
    "verify_onnx",
]

_counter = itertools.count()
_ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "silu", "leaky_relu", "sigmoid")


def n_outputs(context: Any) -> int:
    """Outputs of the model's head: 1 (binary, regression) or ``n_classes``."""
    return int(context.n_classes) if context.task == "multiclass" else 1


def _where(error: BaseException, path: str) -> str:
    """``" (line N)"`` of the deepest traceback frame inside the file ``path``."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
    return f" (line {frames[-1].lineno})" if frames else ""


def load_model_function(path: str | Path) -> Callable[..., Any]:
    """Import the model file ``path`` under a unique module name; return its ``model``."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"model file {path} not found")
    stem = re.sub(r"\W", "_", path.stem)
    name = f"mlaas_user_model_{stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TrainingError(f"model file {path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise TrainingError(
            f"model file {path}: syntax error at line {err.lineno}: {err.msg}"
        ) from err
    except Exception as err:
        raise TrainingError(
            f"model file {path}: importing it raised {type(err).__name__}: {err}"
            f"{_where(err, str(path))}"
        ) from err
    fn = getattr(module, "model", None)
    if not callable(fn):
        raise TrainingError(
            f"model file {path} must define a function model(idim) returning a model"
        )
    return fn  # type: ignore[no-any-return]


def model_kind(obj: Any) -> str | None:
    """``"torch"`` for an ``nn.Module``, ``"keras"`` for a Keras model, else ``None``."""
    for cls in type(obj).__mro__:
        module = cls.__module__
        if cls.__name__ == "Module" and module.startswith("torch.nn"):
            return "torch"
        if cls.__name__ in ("Model", "Functional", "Sequential") and module.startswith(
            ("keras", "tf_keras")
        ):
            return "keras"
    return None


def detect_file_backend(path: str | Path) -> str | None:
    """Guess ``"torch"`` or ``"keras"`` from a model file's imports (``None``: unsure)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    torch = re.search(r"^\s*(import|from)\s+torch\b", text, re.M) is not None
    keras = re.search(r"^\s*(import|from)\s+(keras|tensorflow|tf_keras)\b", text, re.M) is not None
    return "torch" if torch and not keras else "keras" if keras and not torch else None


def call_model_function(
    fn: Callable[..., Any], context: Any, params: Mapping[str, Any], source: str = "the model file"
) -> Any:
    """Call ``fn(idim, **params)`` (plus ``layout=`` when accepted); check the result type."""
    kwargs = dict(params)
    try:
        accepted = set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        accepted = set()
    if "layout" in accepted:
        kwargs["layout"] = context.layout
    try:
        result = fn(context.idim, **kwargs)
    except Exception as err:
        raise TrainingError(
            f"model file {source}: model(idim={context.idim}) raised {type(err).__name__}: {err}"
            f"{_where(err, source)}"
        ) from err
    if model_kind(result) is None:
        raise TrainingError(
            f"model file {source}: model() must return a Keras model or a torch.nn.Module, "
            f"but it returned {type(result).__module__}.{type(result).__qualname__}"
        )
    return result


def _expected_inputs(model: Any, kind: str) -> str:
    if kind == "torch":
        for layer in model.modules():
            if hasattr(layer, "in_features"):
                return f"{layer.in_features} input columns"
    else:
        shape = getattr(model, "input_shape", None)
        if isinstance(shape, tuple) and shape and shape[-1] is not None:
            return f"{shape[-1]} input columns"
    return "a different number of input columns"


def check_model(model: Any, kind: str, layout: FeatureLayout, task: str, outputs: int) -> None:
    """Forward a zeros batch ``(2, idim)``; raise :class:`TrainingError` on any mismatch."""
    idim = layout.width
    zeros = np.zeros((2, idim), dtype=np.float32)
    try:
        if kind == "torch":
            import torch

            with torch.no_grad():
                was_training = model.training
                model.eval()
                out = model(torch.from_numpy(zeros))
                model.train(was_training)
            shape = tuple(out.shape)
        else:
            shape = tuple(model(zeros).shape)
    except Exception as err:
        first = ", ".join(layout.column_names[:5])
        raise TrainingError(
            f"model expects {_expected_inputs(model, kind)} but the data have idim={idim} "
            f"columns (first features: {first}, ...): {type(err).__name__}: {err}"
        ) from err
    good = (2, outputs) if task == "multiclass" else (2, 1)
    if shape != good and not (task != "multiclass" and shape == (2,)):
        raise TrainingError(
            f"the model returns outputs of shape {shape} for 2 events, but a {task} task "
            f"needs {good[1]} output{'s' if good[1] > 1 else ''} per event, shape {good}"
        )


# -- built-in networks -------------------------------------------------------------
def _sizes(params: Mapping[str, Any], key: str, default: list[int]) -> list[int]:
    value = params.get(key, default)
    if not isinstance(value, list | tuple) or not all(isinstance(v, int) and v > 0 for v in value):
        raise TrainingError(
            f"model.params.{key} must be a list of positive integers, got {value!r}"
        )
    return [int(v) for v in value]


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
            dropout, act = _common(params, ("phi", "rho", "dropout", "activation", "pooling"))
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
        dropout, act = _common(params, ("sizes", "dropout", "activation"))
        return mlp(_sizes(params, "sizes", [64, 64]), layout.width, n_out, dropout, act)
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
    dropout, act = _common(params, ("sizes", "dropout", "activation"))
    layers: list[Any] = [keras.Input(shape=(layout.width,), name="x")]
    for size in _sizes(params, "sizes", [64, 64]):
        layers.append(keras.layers.Dense(size, activation=act))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    final = {"binary": "sigmoid", "multiclass": "softmax"}.get(task, "linear")
    layers.append(keras.layers.Dense(n_out, activation=final))
    return keras.Sequential(layers, name="mlp")


# -- export helpers ----------------------------------------------------------------
@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence exporters (torch.onnx, tf2onnx, skl2onnx): prints, warnings, logging."""
    level = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(level)


def verify_onnx(
    path: Path, rows: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], notes: list[str]
) -> bool:
    """ONNX Runtime's ``score`` for ``rows`` must equal ``expected`` within 1e-5.

    On a mismatch the file is deleted and a note says why.
    """
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = np.asarray(session.run(["score"], {"x": rows})[0])
    except Exception as err:
        path.unlink(missing_ok=True)
        notes.append(
            f"onnx: ONNX Runtime cannot run the exported model ({type(err).__name__}: "
            f"{str(err)[:200]}); the bundle has the native model only"
        )
        return False
    if got.shape == expected.shape and np.allclose(got, expected, rtol=1e-5, atol=1e-5):
        return True
    same = got.shape == expected.shape
    diff = float(np.max(np.abs(got - expected))) if same and got.size else float("nan")
    path.unlink(missing_ok=True)
    notes.append(
        f"onnx: the exported model differs from the trained one (shape {got.shape} "
        f"vs {expected.shape}, max |diff| {diff:.3g}); the bundle has the native "
        "model only"
    )
    return False
