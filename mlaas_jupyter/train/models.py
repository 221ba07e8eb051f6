"""Building models: user model files (MLaaS4HEP contract) and the built-in networks.

A model file defines ``model(idim)`` (optionally ``model(idim, **params)`` and, for
models that need to know which columns hold which objects, a ``layout`` argument)
and returns a compiled Keras model or a ``torch.nn.Module``.

Built-ins: ``mlp`` (PyTorch and Keras) and ``deepsets`` (PyTorch): a permutation
invariant network over the objects of each masked jagged collection. Torch and
Keras are imported inside the functions that need them, never at import time.
The built-in networks live in :mod:`._builtin_models` and the ONNX export helpers
(:func:`quiet`, :func:`verify_onnx`) in :mod:`._onnx_export`; both are re-exported here.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import re
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..specs.training import detect_file_backend
from ..stream.layout import FeatureLayout
from ._builtin_models import build_keras_builtin, build_torch_builtin
from ._keras2 import check_mlaas4hep_imports, keras2_builtins, keras2_idioms, load_tf_keras
from ._onnx_export import quiet, verify_onnx

__all__ = [
    "build_keras_builtin",
    "build_torch_builtin",
    "call_model_function",
    "check_model",
    "detect_file_backend",
    "load_model_file",
    "load_model_function",
    "model_kind",
    "n_outputs",
    "quiet",
    "verify_onnx",
]

_counter = itertools.count()


def n_outputs(context: Any) -> int:
    """Outputs of the model's head: 1 (binary, regression) or ``n_classes``."""
    return int(context.n_classes) if context.task == "multiclass" else 1


def _where(error: BaseException, path: str) -> str:
    """``" (line N)"`` of the deepest traceback frame inside the file ``path``."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
    return f" (line {frames[-1].lineno})" if frames else ""


def load_model_function(path: str | Path) -> Callable[..., Any]:
    """Import the model file ``path`` under a unique module name; return its ``model``."""
    return load_model_file(path)[0]


def load_model_file(path: str | Path) -> tuple[Callable[..., Any], str | None]:
    """Import the model file ``path`` under a unique module name: its ``model``, and a
    note when the file is Keras 2 code, run with ``tf_keras`` (see :mod:`._keras2`)."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"model file {path} not found")
    check_mlaas4hep_imports(path)
    stem = re.sub(r"\W", "_", path.stem)
    name = f"mlaas_user_model_{stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TrainingError(f"model file {path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    note = None
    idioms = keras2_idioms(path)
    if idioms:
        keras2 = load_tf_keras(path, idioms)
        # the file's own imports (at its top and inside model()) give tf_keras
        module.__dict__["__builtins__"] = keras2_builtins(keras2)
        version = getattr(keras2, "__version__", "")
        note = (
            f"{path.name} is Keras 2 code ({', '.join(idioms[:3])}): running it with "
            f"tf_keras{' ' + version if version else ''} (Keras 2), as written"
        )
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
    return fn, note


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
