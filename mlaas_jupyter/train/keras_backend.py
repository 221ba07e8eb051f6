"""`KerasBackend`: trains a Keras 3 model (TensorFlow backend) on batch streams.

Keras models output probabilities (sigmoid / softmax) or values, as in MLaaS4HEP:
a user's model file returns a compiled model; an uncompiled one is compiled here
with the task's loss and the configured optimiser. A regression target is learnt
standardised (``ModelContext.target_scale``) and restored in the scores, the manifest
(``target_scale``) and the ONNX graph.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import TrainingError
from ..specs.training import ModelSpec, TrainConfig
from ..stream.adapters import keras_dataset
from . import _keras2
from ._tf_quiet import import_keras
from .backend import ModelContext, scale_fields, target_scale_of
from .models import (
    build_keras_builtin,
    call_model_function,
    check_model,
    load_model_file,
    model_kind,
    n_outputs,
    quiet,
    verify_onnx,
)

__all__ = ["KerasBackend", "load_native"]

if TYPE_CHECKING:
    import keras
else:
    #: Keras, imported here first: TensorFlow loads without its start-up lines on
    #: stderr (unless MLAAS_VERBOSE=1, ``mlaas train --verbose``), see :mod:`._tf_quiet`
    keras = import_keras()

CHUNK = 65536
_LOSSES = {"binary": "binary_crossentropy", "multiclass": "sparse_categorical_crossentropy"}
NAN_HINT = (
    "try a lower training.learning_rate, check the inputs for extreme values "
    "(normalisation: standard helps), and check that the model's output is finite"
)


def _gpus() -> list[Any]:
    import tensorflow as tf

    return list(tf.config.list_physical_devices("GPU"))


def _configure(config: TrainConfig) -> str:
    """Threads and device; ``"cpu"`` or ``"gpu:0"``."""
    import tensorflow as tf

    threads = config.threads or max(1, (os.cpu_count() or 2) - 1)
    with contextlib.suppress(RuntimeError):  # already initialised: keep the settings
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    gpus = _gpus() if config.device != "cpu" else []
    if config.device == "cuda" and not gpus:
        raise TrainingError("training.device is cuda, but TensorFlow sees no GPU (use auto or cpu)")
    if config.device == "cpu":
        with contextlib.suppress(RuntimeError, ValueError):
            tf.config.set_visible_devices([], "GPU")
    return "gpu:0" if gpus else "cpu"


class _NaNGuard(keras.callbacks.Callback):  # type: ignore[misc]
    """Stops training at the first batch whose loss is not finite; remembers which."""

    def __init__(self) -> None:
        super().__init__()
        self.batch: int | None = None

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)) and self.batch is None:
            self.batch = batch + 1
            self.model.stop_training = True


class _Batches(keras.utils.PyDataset):  # type: ignore[misc]
    """A stand-in for :func:`keras_dataset` over any iterable of ``Batch`` objects."""

    def __init__(self, batches: Any, task: str, scale: tuple[float, float] | None) -> None:
        super().__init__()
        mean, std = scale or (0.0, 1.0)
        self.items = [
            (b.x, ((b.y - mean) / std).astype(np.float32) if task != "multiclass" else b.y, b.w)
            for b in batches
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]


@contextlib.contextmanager
def _hush() -> Iterator[None]:
    """Keras' own DeprecationWarnings (numpy 2 ``__array__``) are not the user's concern."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _loss_unit(loss: Any, std: float) -> float | None:
    """What turns a loss of the standardised target into the target's units: std² for
    a mean squared error, std for a mean absolute error, None for another loss."""
    name = str(loss if isinstance(loss, str) else getattr(loss, "name", "") or "").lower()
    name = name or str(getattr(loss, "__name__", "")).lower()
    if name in ("mse", "mean_squared_error"):
        return std**2
    return std if name in ("mae", "mean_absolute_error") else None


def _predict(
    model: Any, x: np.ndarray[Any, Any], task: str, scale: tuple[float, float] | None = None
) -> np.ndarray[Any, Any]:
    pieces = [
        np.asarray(model.predict_on_batch(np.ascontiguousarray(x[i : i + CHUNK], np.float32)))
        for i in range(0, len(x), CHUNK)
    ]
    if not pieces:
        return np.zeros((0,), np.float32)
    out = np.concatenate(pieces)
    if task == "multiclass":
        return out
    out = out.reshape(-1)
    return out * np.float32(scale[1]) + np.float32(scale[0]) if scale is not None else out


class KerasBackend:
    """One Keras model: compile, fit one epoch at a time, checkpoints, exports."""

    kind = "keras"
    epochless = False

    def __init__(self, model: ModelSpec, context: ModelContext, config: TrainConfig) -> None:
        self.context, self.config, self.task = context, config, context.task
        self.scale = context.target_scale if self.task == "regression" else None
        self.notes: list[str] = []
        self.device = _configure(config)
        keras.utils.set_random_seed(context.seed)
        self.source: Path | None = None
        if model.instance is not None:
            net = model.instance
        elif model.file is not None:
            self.source = Path(model.file)
            fn, note = load_model_file(self.source)
            self.notes.extend([note] if note else [])
            with _keras2.hushed() if note else contextlib.nullcontext():
                net = call_model_function(fn, context, model.params, str(self.source))
        else:
            net = build_keras_builtin(
                str(model.name), context.layout, self.task, n_outputs(context), model.params
            )
        if model_kind(net) != "keras":
            raise TrainingError(
                f"the model is a {model_kind(net)} model, not a Keras model: "
                "set model.backend: torch"
            )
        # a Keras 2 model (a legacy model file run with tf_keras) trains with tf_keras
        self.keras2 = _tf_keras() if type(net).__module__.startswith("tf_keras") else None
        check_model(net, "keras", context.layout, self.task, n_outputs(context))
        compiled = net.optimizer is not None if self.keras2 else getattr(net, "compiled", False)
        if not compiled:
            net.compile(optimizer=self._optimizer(), loss=_LOSSES.get(self.task, "mse"))
        self.model = net
        self._epochs = 0

    def _optimizer(self) -> Any:
        lr = self.config.learning_rate
        optimizers = (self.keras2 or keras).optimizers
        if self.config.optimizer == "sgd":
            return optimizers.SGD(learning_rate=lr, momentum=0.9)
        if self.config.optimizer == "adamw":
            return optimizers.AdamW(learning_rate=lr)
        return optimizers.Adam(learning_rate=lr)

    def train_epoch(self, batches: Any) -> float:
        """One pass over ``batches``; the epoch's mean training loss."""
        self._epochs += 1
        if self.keras2 is not None:
            with _hush():
                loss, bad = _keras2.fit_epoch(
                    self.model, self.keras2, batches, self.task, self.scale
                )
        else:
            data = (
                keras_dataset(batches, self.scale)
                if hasattr(batches, "spec")
                else _Batches(batches, self.task, self.scale)
            )
            guard = _NaNGuard()
            with _hush():
                history = self.model.fit(data, epochs=1, verbose=0, callbacks=[guard])
            losses = history.history.get("loss", [float("nan")])
            loss = float(losses[-1]) if losses else float("nan")
            bad = guard.batch or 0
        if bad or not np.isfinite(loss):
            epoch = getattr(batches, "epoch", self._epochs)
            where = f", batch {bad}" if bad else ""
            raise TrainingError(f"training loss became NaN at epoch {epoch}{where}; {NAN_HINT}")
        if self.scale is None:
            return loss
        unit = _loss_unit(getattr(self.model, "loss", None), self.scale[1])
        if unit is None and self._epochs == 1:
            self.notes.append(
                "the model's own loss is reported on the standardised target "
                f"((y - {self.scale[0]:.6g}) / {self.scale[1]:.6g})"
            )
        return loss * unit if unit is not None else loss

    def fit(self, train: Any, validation: Any = None) -> float:
        return self.train_epoch(train)

    def predict(self, x: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, Any]:
        return _predict(self.model, x, self.task, self.scale)

    @staticmethod
    def _keras_path(path: Path) -> Path:
        return path if path.suffix == ".keras" else path.with_name(path.name + ".keras")

    def save_checkpoint(self, path: Path) -> None:
        """``path.keras``: the model with its optimiser state."""
        target = self._keras_path(path)
        partial = target.with_name(target.stem + ".partial.keras")
        with _hush():
            self.model.save(partial)
        os.replace(partial, target)
        if self.scale is not None:  # the weights were trained for this scale
            target.with_suffix(".target_scale.json").write_text(
                json.dumps(scale_fields(self.scale))
            )

    def load_checkpoint(self, path: Path) -> None:
        load = keras.saving.load_model if self.keras2 is None else self.keras2.models.load_model
        with _hush():
            self.model = load(self._keras_path(path))
        sidecar = self._keras_path(path).with_suffix(".target_scale.json")
        if self.task == "regression" and sidecar.is_file():
            self.scale = target_scale_of(json.loads(sidecar.read_text()))

    def save_native(self, directory: Path) -> dict[str, Any]:
        with _hush():
            self.model.save(directory / "model.keras")
        # format tf_keras: saved by Keras 2, which Keras 3 cannot load
        kind = "keras" if self.keras2 is None else "tf_keras"
        fields: dict[str, Any] = {"native": "model.keras", "format": kind}
        if self.source is not None:
            shutil.copyfile(self.source, directory / "model_source.py")
            fields["source"] = "model_source.py"
        return {**fields, **scale_fields(self.scale)}

    def export_onnx(self, path: Path) -> bool:
        rows = np.random.default_rng(0).normal(size=(64, self.context.idim)).astype(np.float32)
        try:
            with quiet():
                if self.keras2 is not None:
                    _keras2.export_onnx(self.model, path, self.context.idim)
                else:
                    self.model.export(str(path), format="onnx", verbose=False)
            classes = n_outputs(self.context) if self.task == "multiclass" else 0
            _rename_io(path, classes, self.scale)
        except Exception as err:
            path.unlink(missing_ok=True)
            message = str(err).splitlines()[0][:300] if str(err) else ""
            self.notes.append(
                f"onnx: Keras export failed ({type(err).__name__}: {message}); "
                "the bundle has the native model.keras only"
            )
            return False
        return verify_onnx(path, rows, self.predict(rows), self.notes)


def _tf_keras() -> Any:
    import tf_keras

    return tf_keras


def _rename_io(path: Path, classes: int, scale: tuple[float, float] | None = None) -> None:
    """Name the graph's input ``x`` and output ``score`` (``(n,)`` unless multi-class);
    a regression's output restored to the target's units (``* std + mean``)."""
    import onnx
    from onnx import helper

    proto = onnx.load(str(path))
    graph = proto.graph
    old_in, old_out = graph.input[0].name, graph.output[0].name
    for node in graph.node:
        node.input[:] = ["x" if name == old_in else name for name in node.input]
    graph.input[0].name = "x"
    if not classes:
        graph.initializer.append(
            helper.make_tensor("score_shape", onnx.TensorProto.INT64, [1], [-1])
        )
        if scale is not None:
            for name, value in (("target_std", scale[1]), ("target_mean", scale[0])):
                graph.initializer.append(
                    helper.make_tensor(name, onnx.TensorProto.FLOAT, [], [value])
                )
            graph.node.extend(
                [
                    helper.make_node("Mul", [old_out, "target_std"], ["target_scaled"]),
                    helper.make_node("Add", ["target_scaled", "target_mean"], ["target_restored"]),
                ]
            )
            old_out = "target_restored"
        graph.node.append(helper.make_node("Reshape", [old_out, "score_shape"], ["score"]))
        out = helper.make_tensor_value_info("score", onnx.TensorProto.FLOAT, ["n"])
    else:
        for node in graph.node:
            node.output[:] = ["score" if name == old_out else name for name in node.output]
        out = helper.make_tensor_value_info("score", onnx.TensorProto.FLOAT, ["n", classes])
    del graph.output[:]
    graph.output.append(out)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def load_native(
    directory: str | Path, fields: Mapping[str, Any], context: ModelContext
) -> Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]:
    """A predict function (final scores) for a bundle's ``model.keras``."""
    load = (
        keras.saving.load_model
        if fields.get("format") != "tf_keras"
        else _tf_keras().models.load_model
    )
    with _hush():
        model = load(Path(directory) / fields["native"], compile=False)
    task = context.task
    scale = target_scale_of(fields) if task == "regression" else None
    return lambda x: _predict(model, x, task, scale)
