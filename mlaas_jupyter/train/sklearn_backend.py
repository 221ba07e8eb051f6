"""`SklearnBackend`: the built-in BDT, a scikit-learn histogram gradient-boosted tree.

The trees are fitted once (``epochless``) on at most ``training.bdt_max_events``
training events held in memory; the ONNX export's output ``score`` is the final
score (P(class 1), class probabilities or the regression value).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..specs.training import ModelSpec, TrainConfig
from .backend import ModelContext
from .models import quiet, verify_onnx

__all__ = ["SklearnBackend", "load_native"]

joblib: Any = importlib.import_module("joblib")  # untyped; comes with scikit-learn


def _final(estimator: Any, x: np.ndarray[Any, Any], task: str) -> np.ndarray[Any, Any]:
    x = np.asarray(x, dtype=np.float32)
    if task == "regression":
        return np.asarray(estimator.predict(x), dtype=np.float32)
    proba = np.asarray(estimator.predict_proba(x), dtype=np.float32)
    return proba[:, 1] if task == "binary" else proba


class SklearnBackend:
    """A ``HistGradientBoostingClassifier`` / ``...Regressor`` trained in one go."""

    kind = "sklearn"
    epochless = True
    device = "cpu"

    def __init__(self, model: ModelSpec, context: ModelContext, config: TrainConfig) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        self.context, self.config, self.task = context, config, context.task
        self.notes: list[str] = []
        if model.file is not None or model.instance is not None:
            raise TrainingError(
                "the sklearn backend trains the built-in bdt only (model.name: bdt)"
            )
        if model.name != "bdt":
            raise TrainingError(f"model {model.name!r} is not a scikit-learn model (use name: bdt)")
        regression = self.task == "regression"
        cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        try:
            self.estimator = cls(random_state=context.seed, **dict(model.params))
        except TypeError as err:
            allowed = ", ".join(k for k in cls().get_params() if k != "random_state")
            raise TrainingError(f"model.params for bdt: {err}; allowed: {allowed}") from err
        self.fitted = False

    def _collect(self, stream: Any) -> tuple[np.ndarray[Any, Any], ...]:
        limit = self.config.bdt_max_events
        xs, ys, ws, held = [], [], [], 0
        iterator = iter(stream)
        try:
            for batch in iterator:
                take = min(len(batch.y), limit - held)
                xs.append(batch.x[:take].copy())
                ys.append(batch.y[:take].copy())
                ws.append(batch.w[:take].copy())
                held += take
                if held >= limit:
                    break
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        if not xs:
            raise TrainingError("the training split has no events")
        available = getattr(stream, "events", None)
        if held >= limit and isinstance(available, int) and available > held:
            self.notes.append(
                f"bdt: trained on {held} of about {available} training events "
                f"(bdt_max_events={limit})"
            )
        else:
            self.notes.append(f"bdt: trained on {held} training events")
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)

    def fit(self, train: Any, validation: Any = None) -> float:
        """Collect the training events, fit the trees; the weighted training loss."""
        x, y, w = self._collect(train)
        if self.task != "regression" and len(np.unique(y)) < 2:
            raise TrainingError("the training events collected for the bdt hold only one class")
        with self._threads():
            self.estimator.fit(x, y, sample_weight=w)
        self.fitted = True
        return self._loss(x, y, w)

    def _loss(self, x: Any, y: Any, w: Any) -> float:
        from sklearn.metrics import log_loss, mean_squared_error

        if self.task == "regression":
            return float(mean_squared_error(y, self.estimator.predict(x), sample_weight=w))
        proba = self.estimator.predict_proba(x)
        labels = list(range(proba.shape[1]))
        return float(log_loss(y, proba, sample_weight=w, labels=labels))

    def train_epoch(self, batches: Any) -> float:
        return self.fit(batches, None)

    def predict(self, x: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, Any]:
        if not self.fitted:
            raise TrainingError("the bdt has not been trained yet")
        # the report predicts many times from a job's thread: an OpenMP team of all cores
        # per call, beside the other busy threads of the process, can stall for minutes
        with self._threads():
            return _final(self.estimator, x, self.task)

    def _threads(self) -> Any:
        limits = importlib.import_module("threadpoolctl").threadpool_limits
        threads = self.config.threads or max(1, (os.cpu_count() or 2) - 1)
        return limits(limits=threads, user_api="openmp")

    def save_checkpoint(self, path: Path) -> None:
        partial = path.with_name(path.name + ".partial")
        joblib.dump({"estimator": self.estimator, "fitted": self.fitted}, partial)
        os.replace(partial, path)

    def load_checkpoint(self, path: Path) -> None:
        state = joblib.load(path)
        self.estimator, self.fitted = state["estimator"], state["fitted"]

    def save_native(self, directory: Path) -> dict[str, Any]:
        joblib.dump(self.estimator, directory / "model.joblib")
        return {"native": "model.joblib", "format": "sklearn-joblib"}

    def export_onnx(self, path: Path) -> bool:
        rows = np.random.default_rng(0).normal(size=(64, self.context.idim)).astype(np.float32)
        try:
            with quiet():
                proto = _to_onnx(self.estimator, self.context.idim, self.task)
            path.write_bytes(proto.SerializeToString())
        except Exception as err:
            path.unlink(missing_ok=True)
            self.notes.append(
                f"onnx: skl2onnx conversion failed ({type(err).__name__}: "
                f"{str(err)[:300]}); the bundle has the native model.joblib only"
            )
            return False
        return verify_onnx(path, rows, self.predict(rows), self.notes)


@contextlib.contextmanager
def _bool_attribute_fix() -> Iterator[None]:
    """skl2onnx 1.20 passes ``False`` into an integer attribute list for the leaves of
    histogram gradient boosting trees, which onnx >= 1.20 rejects; make it ``0``."""
    module: Any = importlib.import_module("skl2onnx.common.tree_ensemble")
    original = module.add_node

    def add_node(*args: Any, **kwargs: Any) -> Any:
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(
                kwargs["nodes_missing_value_tracks_true"]
            )
        return original(*args, **kwargs)

    module.add_node = add_node
    try:
        yield
    finally:
        module.add_node = original


def _to_onnx(estimator: Any, idim: int, task: str) -> Any:
    """The converted model with one output ``score`` holding the final scores."""
    import onnx
    from onnx import helper

    convert_sklearn = importlib.import_module("skl2onnx").convert_sklearn
    tensor_type = importlib.import_module("skl2onnx.common.data_types").FloatTensorType

    options = {id(estimator): {"zipmap": False}} if task != "regression" else None
    with _bool_attribute_fix():
        proto = convert_sklearn(
            estimator, initial_types=[("x", tensor_type([None, idim]))], options=options
        )
    graph = proto.graph
    produced = graph.output[-1].name if task != "regression" else graph.output[0].name
    if task == "binary":
        graph.initializer.append(
            helper.make_tensor("score_column", onnx.TensorProto.INT64, [], [1])
        )
        graph.node.append(helper.make_node("Gather", [produced, "score_column"], ["score"], axis=1))
        out = helper.make_tensor_value_info("score", onnx.TensorProto.FLOAT, ["n"])
    elif task == "regression":
        graph.initializer.append(
            helper.make_tensor("score_shape", onnx.TensorProto.INT64, [1], [-1])
        )
        graph.node.append(helper.make_node("Reshape", [produced, "score_shape"], ["score"]))
        out = helper.make_tensor_value_info("score", onnx.TensorProto.FLOAT, ["n"])
    else:
        graph.node.append(helper.make_node("Identity", [produced], ["score"]))
        out = helper.make_tensor_value_info("score", onnx.TensorProto.FLOAT, ["n", None])
    del graph.output[:]
    graph.output.append(out)
    onnx.checker.check_model(proto)
    return proto


def load_native(
    directory: str | Path, fields: Mapping[str, Any], context: ModelContext
) -> Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]:
    """A predict function (final scores) for a bundle's ``model.joblib``."""
    estimator = joblib.load(Path(directory) / fields["native"])
    task = context.task
    return lambda x: _final(estimator, x, task)
