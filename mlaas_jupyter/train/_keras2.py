"""Model files written for Keras 2 and MLaaS4HEP's own helpers.

MLaaS4HEP's model files are Keras 2 code (``keras.optimizers.Adam(lr=1e-3)``, layers
given ``input_shape=``), which Keras 3 refuses. Such a file is recognised from its
source (:func:`keras2_idioms`) and run as written with ``tf_keras``, the Keras 2
package TensorFlow publishes for legacy code: while the file is imported and its
``model(idim)`` called, ``import keras``, ``from keras.layers import ...``,
``from tensorflow import keras`` and ``tf.keras`` give ``tf_keras``
(:func:`keras2_builtins`); nothing outside the file sees a difference.

A file importing MLaaS4HEP's own modules (``MLaaS4HEP.jarray.pytorch.
JaggedArrayLinear`` in its PyTorch example) is refused in one line naming what
replaces them here (:func:`check_mlaas4hep_imports`).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import logging
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError

__all__ = [
    "check_mlaas4hep_imports",
    "export_onnx",
    "fit_epoch",
    "hushed",
    "keras2_builtins",
    "keras2_idioms",
    "load_tf_keras",
]

#: What replaces MLaaS4HEP's helper modules here.
_REPLACEMENTS = {
    "MLaaS4HEP.jarray": "jagged branches reach the model already padded to a fixed length "
    "(dataset.jagged: length, pad_value, mask adds 0/1 mask columns), so a plain "
    "torch.nn.Linear takes their place; for a network over the objects themselves use the "
    "built-in deepsets (model: {name: deepsets})",
}
_DEFAULT_REPLACEMENT = (
    "the dataset spec (files, tree, branches, cuts, jagged padding, normalisation) and the "
    "training layer do what MLaaS4HEP's modules did; keep only model(idim) in the file"
)
_OPTIMIZERS = {"Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "Nadam", "RMSprop", "SGD", "Ftrl"}
_SHAPE_KEYWORDS = ("input_shape", "input_dim", "batch_input_shape")


def _tree(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError, ValueError):
        return None  # the import reports it, with its line


def check_mlaas4hep_imports(path: Path) -> None:
    """Raise :class:`TrainingError` when the model file imports a ``MLaaS4HEP`` module."""
    tree = _tree(path)
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "MLaaS4HEP":
                continue
            instead = next(
                (text for prefix, text in _REPLACEMENTS.items() if name.startswith(prefix)),
                _DEFAULT_REPLACEMENT,
            )
            raise TrainingError(
                f"model file {path} (line {node.lineno}) imports {name}, a helper of "
                f"MLaaS4HEP itself, which is not used here: {instead}"
            )


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keras_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names bound to Keras (or TensorFlow) modules, and names imported from Keras."""
    modules: set[str] = set()
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("keras", "tensorflow", "tf_keras"):
                    modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            from_keras = node.module.split(".")[0] in ("keras", "tf_keras") or (
                node.module.startswith("tensorflow.keras")
            )
            for alias in node.names:
                if alias.name == "keras" and node.module == "tensorflow":
                    modules.add(alias.asname or alias.name)  # from tensorflow import keras
                elif from_keras:
                    imported.add(alias.asname or alias.name)  # from keras.layers import Dense
    return modules, imported


def keras2_idioms(path: Path) -> list[str]:
    """The Keras 2 code of a model file that Keras 3 refuses or warns about, as
    ``"Adam(lr=...) at line 16"`` (empty for Keras 3 code or a file without Keras)."""
    tree = _tree(path)
    if tree is None:
        return []
    modules, imported = _keras_names(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "fit_generator":
            found.append((node.lineno, _dotted(node)))  # Keras 2 only
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if not name or not (name.split(".")[0] in modules or name in imported):
            continue
        short = name.rsplit(".", 1)[-1]
        for keyword in node.keywords:
            legacy_rate = keyword.arg in ("lr", "decay") and short in _OPTIMIZERS
            if legacy_rate or keyword.arg in _SHAPE_KEYWORDS:
                found.append((node.lineno, f"{short}({keyword.arg}=...)"))
    return list(
        dict.fromkeys(f"{text} at line {line}" for line, text in sorted(found, key=lambda f: f[0]))
    )


def load_tf_keras(path: Path, idioms: list[str]) -> Any:
    """The ``tf_keras`` module, or a :class:`TrainingError` saying how to get it."""
    try:
        return importlib.import_module("tf_keras")
    except ImportError as err:
        raise TrainingError(
            f"model file {path} is Keras 2 code ({', '.join(idioms[:3])}), which Keras 3 "
            "refuses; install tf-keras (pip install --no-deps tf-keras==<your TensorFlow's "
            "release>: its `tensorflow` requirement would replace tensorflow-cpu) "
            "to run it as written, or port it (learning_rate=, keras.Input(shape=...))"
        ) from err


class _TensorFlowView(types.ModuleType):
    """``tensorflow`` as a Keras 2 model file saw it: ``tf.keras`` is ``tf_keras``."""

    def __init__(self, tensorflow: types.ModuleType, keras2: types.ModuleType) -> None:
        super().__init__(tensorflow.__name__, tensorflow.__doc__)
        self._tensorflow = tensorflow
        self.keras = keras2

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tensorflow, name)


def _keras2_target(name: str) -> str | None:
    for prefix in ("keras", "tensorflow.keras"):
        if name == prefix or name.startswith(prefix + "."):
            return "tf_keras" + name[len(prefix) :]
    return None


def keras2_builtins(keras2: types.ModuleType) -> dict[str, Any]:
    """The builtins of a Keras 2 model file: its imports of Keras give ``tf_keras``."""
    real_import = builtins.__import__

    def keras2_import(
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        target = _keras2_target(name) if level == 0 else None
        if target is not None:
            module = real_import(target, globals, locals, fromlist, level)
            if fromlist or not name.startswith("tensorflow"):
                return module  # `import keras.layers` binds tf_keras, as keras was bound
            name, target = "tensorflow", None
        module = real_import(name, globals, locals, fromlist, level)
        if level == 0 and name.split(".")[0] == "tensorflow" and not (fromlist and "." in name):
            return _TensorFlowView(module, keras2)
        return module

    namespace = dict(vars(builtins))
    namespace["__import__"] = keras2_import
    return namespace


@contextlib.contextmanager
def hushed() -> Iterator[None]:
    """tf_keras logs (through absl) that ``lr`` is deprecated: the run's note has said
    already that the file is Keras 2 code, run as written."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def fit_epoch(
    model: Any,
    keras2: types.ModuleType,
    batches: Any,
    task: str,
    scale: tuple[float, float] | None = None,
) -> tuple[float, int]:
    """One ``tf_keras`` fit over ``batches`` (a regression target standardised with
    ``scale``): the mean loss and the first batch (from 1) whose loss was not finite
    (0: none)."""

    class NaNGuard(keras2.callbacks.Callback):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.batch = 0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not np.isfinite(float(loss)) and not self.batch:
                self.batch = batch + 1
                self.model.stop_training = True

    def items() -> Iterator[tuple[Any, Any, Any]]:
        for batch in batches:
            y = batch.y if task == "multiclass" else batch.y.astype(np.float32)
            if scale is not None:
                y = ((y - scale[0]) / scale[1]).astype(np.float32)
            yield batch.x, y, batch.w

    guard = NaNGuard()
    history = model.fit(items(), epochs=1, verbose=0, callbacks=[guard])
    losses = history.history.get("loss", [float("nan")])
    return (float(losses[-1]) if losses else float("nan")), guard.batch


def export_onnx(model: Any, path: Path, idim: int) -> None:
    """A ``tf_keras`` model as ONNX through tf2onnx (its ``export`` has no ONNX format)."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, idim), tf.float32, name="x"),)
    tf2onnx.convert.from_keras(model, input_signature=signature, output_path=str(path))
