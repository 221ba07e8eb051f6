"""`PredictionService`: JSON payloads in, scores out, with dynamic micro-batching.

Each request's features are built on the event loop (a NumPy fast path for models
whose inputs are all flat numbers, the full :class:`FeatureBuilder` otherwise, which
names the feature and row of any bad value). Requests for the same model version that
arrive within ``max_delay_ms`` are merged into one matrix, scored by one model call in
a small thread pool (the loop stays free; ONNX Runtime sessions run concurrently), and
the scores are split back. Accepted payloads::

    {"rows": [{"MET_pt": 40.5, "Jet_pt": [50.1, 31.0]}, ...]}
    {"columns": {"MET_pt": [40.5, ...], "Jet_pt": [[50.1, 31.0], ...]}}
    {"keys": ["MET_pt", "nJet"], "values": [[40.5, 2], ...]}   # TFaaS style
    {"keys": ["MET_pt", "nJet"], "values": [40.5, 2]}          # TFaaS: one event

(``values`` is one event when some of its items are not lists.)
A TFaaS payload may also carry ``"model"``, which must then name the served model.
"""

from __future__ import annotations

import array
import asyncio
import itertools
import operator
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, MlaasError, PayloadTooLarge
from ..stream.features import columns_from_keys_values, columns_from_rows
from .bundle import Matrix, ModelBundle, Scores
from .friend import score_branches, write_friend_tree
from .registry import ModelRegistry

__all__ = ["PayloadTooLarge", "PredictionService", "prediction_reply"]

_FORMS = "{'rows': [...]}, {'columns': {...}} or {'keys': [...], 'values': [...]}"


def prediction_reply(
    name: str, version: int, bundle: ModelBundle, scores: Scores
) -> dict[str, Any]:
    """The reply of a prediction, with the scores as an array (written by
    :func:`mlaas_jupyter._json.encode_json`)."""
    reply: dict[str, Any] = {"model": name, "version": version, "task": bundle.task}
    reply["scores"] = scores
    if bundle.task == "multiclass":
        reply["classes"] = bundle.classes
    return reply


class _FlatInputs:
    """Matrices of models whose inputs are all flat numbers, without the generic builder:
    the same float32 normalisation, vectorised. Returns None for anything unusual (the
    generic path then builds the matrix, or explains what is wrong)."""

    def __init__(self, bundle: ModelBundle) -> None:
        features = bundle.layout.features
        self.order = [f.name for f in features]
        self.names = frozenset(self.order)
        getter = operator.itemgetter(*self.order)
        self.getter = getter if len(self.order) > 1 else (lambda row: (getter(row),))
        self.shift = np.array([f.shift for f in features], dtype=np.float32)
        self.scale = np.array([f.scale for f in features], dtype=np.float32)

    @staticmethod
    def usable(bundle: ModelBundle) -> bool:
        builder = bundle.builder
        features = bundle.layout.features
        return (
            not builder.new_branches
            and all(kind == "flat" for kind in builder.inputs.values())
            and all(f.kind == "flat" and f.width == 1 for f in features)
            and sorted(f.name for f in features) == sorted(builder.inputs)
        )

    def _finish(self, x: Matrix) -> Matrix:
        x -= self.shift
        x *= self.scale
        return x

    def rows(self, rows: Sequence[Any]) -> Matrix | None:
        width = len(self.order)
        try:
            if set(map(len, rows)) != {width}:
                return None  # a missing or an extra feature: the generic path names it
            # array("d") takes numbers only (bool and int too): a string, null, list...
            # raises TypeError, and the generic path says which feature of which row
            values = array.array("d", itertools.chain.from_iterable(map(self.getter, rows)))
        except (KeyError, TypeError, IndexError, OverflowError):
            return None
        x = np.frombuffer(values, dtype=np.float64).astype(np.float32)
        return self._finish(x.reshape(len(rows), width))

    def columns(self, columns: Mapping[str, Any]) -> Matrix | None:
        if len(columns) != len(self.order) or not self.names.issuperset(columns):
            return None
        x: Matrix | None = None
        for index, name in enumerate(self.order):
            column = columns[name]
            if isinstance(column, np.ndarray):
                values = column
                if values.ndim != 1 or values.dtype.kind not in "biuf":
                    return None
            elif isinstance(column, list):
                try:  # numbers only, as in rows()
                    values = np.frombuffer(array.array("d", column), dtype=np.float64)
                except (TypeError, OverflowError):
                    return None
            else:
                return None
            if x is None:
                x = np.empty((len(self.order), len(values)), dtype=np.float32)
            elif len(values) != x.shape[1]:
                return None
            x[index] = values
        if x is None:
            return None
        return self._finish(np.ascontiguousarray(x.T))

    def keys_values(self, keys: Any, values: Any) -> Matrix | None:
        if not isinstance(keys, list) or len(keys) != len(self.order) or set(keys) != self.names:
            return None
        try:
            array = np.array(values)
        except (ValueError, TypeError):
            return None
        if array.ndim != 2 or array.shape[1] != len(keys) or array.dtype.kind not in "biuf":
            return None
        x = array[:, [keys.index(name) for name in self.order]].astype(np.float32)
        return self._finish(x)


class _Batcher:
    """Merges the matrices submitted for one loaded bundle within ``delay`` seconds."""

    def __init__(self, bundle: ModelBundle, pool: ThreadPoolExecutor, max_rows: int, delay: float):
        self.bundle, self.pool, self.max_rows, self.delay = bundle, pool, max_rows, delay
        self.loop = asyncio.get_running_loop()
        self.pending: list[tuple[Matrix, asyncio.Future[Scores]]] = []
        self.rows = 0
        self.timer: asyncio.Handle | None = None

    def submit(self, x: Matrix) -> asyncio.Future[Scores]:
        loop = self.loop
        future: asyncio.Future[Scores] = loop.create_future()
        self.pending.append((x, future))
        self.rows += len(x)
        if self.rows >= self.max_rows:
            self.flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.delay, self.flush)
        return future

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending, self.rows = self.pending, [], 0
        if not batch:
            return
        x = batch[0][0] if len(batch) == 1 else np.concatenate([m for m, _ in batch])
        run = self.loop.run_in_executor(self.pool, self.bundle.predict_matrix, x)
        run.add_done_callback(lambda done: _deliver(batch, done))


def _deliver(
    batch: list[tuple[Matrix, asyncio.Future[Scores]]], done: asyncio.Future[Scores]
) -> None:
    error = done.exception() if not done.cancelled() else asyncio.CancelledError()
    start = 0
    for x, future in batch:
        if not future.done():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result()[start : start + len(x)])
        start += len(x)


class PredictionService:
    """Scores JSON payloads with the models of a registry.

    Parameters
    ----------
    registry
        Where the models come from.
    max_batch
        Rows of one merged model call; a batch that reaches it is run at once.
    max_delay_ms
        How long a request waits for others to share its model call.
    max_rows
        Events one request may hold (more: :class:`PayloadTooLarge`).
    workers
        Threads running model calls.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        max_batch: int = 4096,
        max_delay_ms: float = 2.0,
        max_rows: int = 200_000,
        workers: int = 2,
    ) -> None:
        self.registry = registry
        self.max_batch, self.max_rows = max(1, max_batch), max(1, max_rows)
        self.delay = max(0.0, max_delay_ms) / 1000.0
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="mlaas-predict")
        self._files = ThreadPoolExecutor(1, thread_name_prefix="mlaas-predict-file")
        self._batchers: dict[tuple[str, int], _Batcher] = {}
        self._flat: weakref.WeakKeyDictionary[ModelBundle, _FlatInputs | None] = (
            weakref.WeakKeyDictionary()
        )

    def close(self) -> None:
        """Stop the worker threads (running calls finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._files.shutdown(wait=False, cancel_futures=True)

    async def bundle(self, name: str, version: int | None = None) -> tuple[ModelBundle, int]:
        """The loaded bundle of a model and its version (loaded in a thread when needed)."""
        number, found = self.registry.lookup(name, version)
        if found is None:
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(self._pool, self.registry.get, name, number)
        return found, number

    def matrix(self, bundle: ModelBundle, payload: Any, name: str | None = None) -> Matrix:
        """The model matrix of a payload (see the module's docstring).

        Raises
        ------
        DataError
            For an unknown payload shape, missing or unknown features, or bad values
            (naming the feature and the row).
        PayloadTooLarge
            For more than ``max_rows`` events.
        """
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # 1e40 -> inf, as NaN stays NaN
                return self._matrix(bundle, payload, name)
        except (OverflowError, TypeError, ValueError) as err:
            if isinstance(err, MlaasError):
                raise
            raise DataError(
                f"a value is not usable as a number ({err}); numbers must fit in a 64-bit float"
            ) from None

    def _matrix(self, bundle: ModelBundle, payload: Any, name: str | None) -> Matrix:
        if not isinstance(payload, Mapping):
            raise DataError(f"the request body must be a JSON object: {_FORMS}")
        fields = set(payload) - {"model"}
        model = payload.get("model")
        if model is not None and model != name:
            raise DataError(f"the payload names model {model!r}, the request {name!r}")
        if fields not in ({"rows"}, {"columns"}, {"keys", "values"}):
            raise DataError(f"unexpected payload fields {sorted(fields)}; send {_FORMS}")
        if bundle not in self._flat:
            self._flat[bundle] = _FlatInputs(bundle) if _FlatInputs.usable(bundle) else None
        flat = self._flat[bundle]
        builder = bundle.builder
        if "rows" in fields:
            rows = payload["rows"]
            if not isinstance(rows, list):
                raise DataError("'rows' must be a list of objects of named features")
            self._check_size(len(rows))
            if not rows:
                return np.zeros((0, bundle.layout.width), dtype=np.float32)
            x = flat.rows(rows) if flat is not None else None
            return x if x is not None else builder.matrix(columns_from_rows(rows))
        if "columns" in fields:
            columns = payload["columns"]
            if not isinstance(columns, Mapping):
                raise DataError("'columns' must be an object of feature names to value lists")
            first: Any = next(iter(columns.values()), [])
            self._check_size(len(first) if isinstance(first, list | np.ndarray) else 0)
            x = flat.columns(columns) if flat is not None and columns else None
            return x if x is not None else builder.matrix(columns)
        keys, values = payload["keys"], payload["values"]
        if isinstance(values, list) and any(not isinstance(v, list | dict) for v in values):
            values = [values]  # TFaaS: one event as a flat list of values
        if isinstance(values, list):
            self._check_size(len(values))
        x = flat.keys_values(keys, values) if flat is not None else None
        return x if x is not None else builder.matrix(columns_from_keys_values(keys, values))

    def _check_size(self, rows: int) -> None:
        if rows > self.max_rows:
            raise PayloadTooLarge(f"{rows} events in one request; the limit is {self.max_rows}")

    async def score(self, name: str, version: int, bundle: ModelBundle, x: Matrix) -> Scores:
        """Scores of ``x``, sharing a model call with concurrent requests."""
        if len(x) == 0:
            return bundle.predict_matrix(x)
        if len(x) >= self.max_batch:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, bundle.predict_matrix, x)
        batcher = self._batchers.get((name, version))
        loop = asyncio.get_running_loop()
        if batcher is None or batcher.bundle is not bundle or batcher.loop is not loop:
            if batcher is not None and batcher.loop is loop:
                batcher.flush()
            batcher = _Batcher(bundle, self._pool, self.max_batch, self.delay)
            self._batchers[(name, version)] = batcher
        return await batcher.submit(x)

    async def scores(
        self, name: str, payload: Any, version: int | None = None
    ) -> tuple[ModelBundle, int, Scores]:
        """(bundle, version, scores array) of a payload: what :meth:`predict` formats."""
        bundle, number = await self.bundle(name, version)
        if bundle.folds is not None:  # k models, each its own normalisation: no shared matrix
            data = self._fold_data(payload, name)
            loop = asyncio.get_running_loop()
            scores = await loop.run_in_executor(self._pool, self._fold_scores, bundle, data)
            return bundle, number, scores
        scores = await self.score(name, number, bundle, self.matrix(bundle, payload, name))
        return bundle, number, scores

    def _fold_data(self, payload: Any, name: str) -> Any:
        """The rows, columns or keys/values of a k-fold model's payload (checked)."""
        if not isinstance(payload, Mapping):
            raise DataError(f"the request body must be a JSON object: {_FORMS}")
        fields = set(payload) - {"model"}
        if payload.get("model") not in (None, name):
            raise DataError(f"the payload names model {payload['model']!r}, the request {name!r}")
        if fields not in ({"rows"}, {"columns"}, {"keys", "values"}):
            raise DataError(f"unexpected payload fields {sorted(fields)}; send {_FORMS}")
        if "rows" in fields:
            if not isinstance(payload["rows"], list):
                raise DataError("'rows' must be a list of objects of named features")
            self._check_size(len(payload["rows"]))
            return payload["rows"]
        if "columns" in fields:
            if not isinstance(payload["columns"], Mapping):
                raise DataError("'columns' must be an object of feature names to value lists")
            first: Any = next(iter(payload["columns"].values()), [])
            self._check_size(len(first) if isinstance(first, list | np.ndarray) else 0)
            return payload["columns"]
        values = payload["values"]
        if isinstance(values, list) and any(not isinstance(v, list | dict) for v in values):
            values = [values]  # TFaaS: one event as a flat list of values
        self._check_size(len(values) if isinstance(values, list) else 0)
        return {"keys": payload["keys"], "values": values}

    @staticmethod
    def _fold_scores(bundle: ModelBundle, data: Any) -> Scores:
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                return bundle.predict(data)
        except (OverflowError, TypeError, ValueError) as err:
            if isinstance(err, MlaasError):
                raise
            raise DataError(f"a value is not usable as a number ({err})") from None

    async def predict(self, name: str, payload: Any, version: int | None = None) -> dict[str, Any]:
        """``{"model", "version", "task", "scores"}`` (plus ``"classes"`` for multi-class
        models, whose scores are lists of probabilities) for a JSON payload."""
        bundle, number, scores = await self.scores(name, payload, version)
        reply = prediction_reply(name, number, bundle, scores)
        reply["scores"] = scores.tolist()
        return reply

    async def predict_file(
        self,
        name: str,
        root_path: str | Path,
        out_path: str | Path,
        tree: str | None = None,
        *,
        version: int | None = None,
        branch_prefix: str = "score",
    ) -> dict[str, Any]:
        """Score every entry of a file into a friend tree at ``out_path`` (in a thread)."""
        bundle, number = await self.bundle(name, version)
        loop = asyncio.get_running_loop()
        entries = await loop.run_in_executor(
            self._files, write_friend_tree, bundle, root_path, out_path, tree, branch_prefix
        )
        return {
            "model": name,
            "version": number,
            "file": str(root_path),
            "out": str(out_path),
            "entries": entries,
            "branches": score_branches(bundle, branch_prefix),
        }
