"""Loading a trained bundle and scoring raw events with it.

:func:`load_bundle` reads ``manifest.json``, rebuilds the feature pipeline
(:class:`~mlaas_jupyter.stream.features.FeatureBuilder`) and picks an engine: ONNX
Runtime when the bundle has ``model.onnx``, else the training library's own format
through the backend's ``load_native``. :meth:`ModelBundle.predict` takes columns, JSON
rows, TFaaS-style keys/values or a file path and returns the final scores (P(class 1)
``(n,)`` for binary tasks, ``(n, k)`` probabilities for multi-class, ``(n,)`` values
for regression). Every event is scored: cuts of the training spec are not applied.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, MlaasError, SourceError
from ..stream.features import FeatureBuilder, columns_from_keys_values, columns_from_rows
from ..stream.layout import FeatureLayout
from ..stream.schema import TreeSource
from ..stream.sources import open_tree
from ..train.bundle import BUNDLE_FORMAT
from ._folds import fold_folders, fold_values, pick_scores

__all__ = ["ENGINES", "ModelBundle", "load_bundle", "read_manifest"]

ENGINES = ("auto", "onnxruntime", "native")
TASKS = ("binary", "multiclass", "regression")
_REQUIRED = ("name", "task", "inputs", "layout", "backend")
Scores = np.ndarray[Any, Any]
Matrix = np.ndarray[Any, np.dtype[np.float32]]


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the bundle folder ``path`` (or of its ``manifest.json``), checked.

    Raises
    ------
    SourceError
        Naming the path, when the folder or manifest is missing, unreadable, of an
        unsupported format version or lacks required fields.
    """
    folder = Path(path)
    if folder.name == "manifest.json" and folder.is_file():
        folder = folder.parent
    if not folder.exists():
        raise SourceError(str(folder), "no such bundle")
    file = folder / "manifest.json"
    if not file.is_file():
        raise SourceError(str(folder), "not a model bundle: it has no manifest.json")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SourceError(str(file), f"corrupted manifest ({type(err).__name__}: {err})") from err
    if not isinstance(manifest, dict):
        raise SourceError(str(file), "corrupted manifest: not a JSON object")
    version = manifest.get("bundle_format")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SourceError(
            str(file),
            f"not a bundle manifest: 'bundle_format' is {version!r}, not a version number",
        )
    if version > BUNDLE_FORMAT:
        raise SourceError(
            str(file),
            f"bundle format {version} is newer than this mlaas-jupyter reads "
            f"({BUNDLE_FORMAT}); upgrade mlaas-jupyter",
        )
    lacking = [key for key in _REQUIRED if key not in manifest]
    if lacking:
        raise SourceError(str(file), f"corrupted manifest: no {', '.join(lacking)}")
    if manifest["task"] not in TASKS:
        raise SourceError(str(file), f"task {manifest['task']!r} is not one of {', '.join(TASKS)}")
    return manifest


class _OnnxEngine:
    """An ONNX Runtime session (thread-safe: ``run`` may be called concurrently)."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise SourceError(
                str(path), f"cannot load the ONNX model ({type(err).__name__}: {err})"
            ) from err
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = "score" if "score" in outputs else outputs[0]
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: Matrix) -> Scores:
        return np.asarray(self.session.run([self.output], {self.input: x})[0])


class _LockedEngine:
    """A native predict function, one call at a time."""

    def __init__(self, function: Callable[[Matrix], Scores]) -> None:
        self.function = function
        self.lock = threading.Lock()

    def __call__(self, x: Matrix) -> Scores:
        with self.lock:
            return np.asarray(self.function(x))


class ModelBundle:
    """A loaded bundle: its manifest, feature pipeline and engine.

    Use :func:`load_bundle` to make one. Methods may be called from several threads.
    ``name``, ``task``, ``classes`` and ``tree`` (the training tree) come from the
    manifest; ``engine`` is ``"onnxruntime"`` or ``"native"``.
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        builder: FeatureBuilder,
        engine: str,
        function: Callable[[Matrix], Scores],
        batch_size: int = 65536,
        folds: tuple[str | None, list[ModelBundle]] | None = None,
    ) -> None:
        self.path, self.manifest, self.builder, self.engine = path, manifest, builder, engine
        self.batch_size = max(1, batch_size)
        self._function = function
        #: a k-fold bundle's fold_by branch and fold models (None: one model)
        self._folds = folds
        self.name = str(manifest["name"])
        self.task = str(manifest["task"])
        self.classes = [str(c) for c in manifest.get("classes") or []]
        tree = manifest.get("tree")
        self.tree = None if tree is None else str(tree)

    @property
    def inputs(self) -> dict[str, str]:
        """Raw features an event must provide, with their kinds (flat, jagged, fixed)."""
        return dict(self.builder.inputs)

    @property
    def layout(self) -> FeatureLayout:
        return self.builder.layout

    @property
    def folds(self) -> tuple[int, str | None] | None:
        """``(k, fold_by)`` of a k-fold bundle (None: one model). Its :meth:`predict`
        scores an event by the model of its fold, ``fold_by`` (a branch; None: the entry
        number in the file) % k, or by the mean of the k models when rows lack it;
        :meth:`predict_matrix` takes the matrix of fold 0's model (:attr:`builder`)."""
        return None if self._folds is None else (len(self._folds[1]), self._folds[0])

    def __repr__(self) -> str:
        where = str(self.path)
        return f"ModelBundle({self.name!r}, task={self.task!r}, engine={self.engine!r}, {where!r})"

    # -- scoring ---------------------------------------------------------------
    def matrix(self, data: Any, strict: bool = True) -> Matrix:
        """The model matrix of in-memory ``data`` (columns, rows or keys/values)."""
        columns = self.columns(data)
        if columns is None:
            return np.zeros((0, self.layout.width), dtype=np.float32)
        return self.builder.matrix(columns, strict)

    def columns(self, data: Any) -> Mapping[str, Any] | None:
        """In-memory ``data`` as columns (None: no rows)."""
        if isinstance(data, Mapping):
            if set(data) == {"keys", "values"} and "keys" not in self.builder.inputs:
                return columns_from_keys_values(data["keys"], data["values"])
            return data
        if isinstance(data, list | tuple):
            return columns_from_rows(data) if data else None
        raise DataError(
            "expected columns (a mapping of feature names to values), a list of rows, "
            f"{{'keys': ..., 'values': ...}} or a file path; got {type(data).__name__}"
        )

    def predict(
        self,
        data: Any,
        tree: str | None = None,
        *,
        strict: bool = True,
        step_size: int | str = "64 MB",
    ) -> Scores:
        """Final scores of the events in ``data``.

        Parameters
        ----------
        data
            Columns ``{name: values}``, a list of row objects, ``{"keys": [...],
            "values": [[...], ...]}``, or the path of a ROOT (or Parquet/CSV) file
            whose entries are all scored in order, chunk by chunk.
        tree
            Tree of the file; the bundle's training tree by default.
        strict
            Reject features the model does not read (in-memory data only).
        """
        if isinstance(data, str | os.PathLike):
            source = self.open_source(os.fspath(data), tree)
            try:
                parts = list(self.iter_scores(source, step_size))
            finally:
                source.close()
            return np.concatenate(parts) if parts else self._empty()
        if self._folds is not None:
            columns = self.columns(data)
            if columns is None:
                return self._empty()
            by, folds = self._folds
            rest, values = fold_values(columns, by)
            return pick_scores(folds, rest, values, strict, self._empty)
        return self.predict_matrix(self.matrix(data, strict))

    def predict_matrix(self, x: Any) -> Scores:
        """Final scores of an already built ``(n, width)`` matrix."""
        matrix = np.ascontiguousarray(x, dtype=np.float32)
        width = self.layout.width
        if matrix.ndim != 2 or matrix.shape[1] != width:
            raise DataError(f"expected a matrix of shape (n, {width}), got shape {matrix.shape}")
        n = len(matrix)
        if n == 0:
            return self._empty()
        parts = [self._run(matrix[i : i + self.batch_size]) for i in range(0, n, self.batch_size)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _run(self, x: Matrix) -> Scores:
        scores = self._function(x)
        n = len(x)
        k = len(self.classes)
        if self.task == "multiclass" and scores.size == n * k:
            return scores.reshape(n, k)
        if self.task != "multiclass" and scores.size == n:
            return scores.reshape(n)
        raise DataError(
            f"the model returned scores of shape {scores.shape} for {n} events ({self.task} task)"
        )

    def _empty(self) -> Scores:
        shape = (0, len(self.classes)) if self.task == "multiclass" else (0,)
        return np.zeros(shape, dtype=np.float32)

    # -- files -----------------------------------------------------------------
    def open_source(self, path: str, tree: str | None = None) -> TreeSource:
        """Open ``tree`` (default: the training tree) of ``path``; check it has the inputs."""
        source = open_tree(path, tree if tree is not None else self.tree)
        missing = [name for name in self.builder.inputs if name not in source.branches]
        if missing:
            source.close()
            raise DataError(
                f"{path}: tree {source.name!r} lacks input branches of the model: "
                + ", ".join(missing)
            )
        by = self._folds[0] if self._folds is not None else None
        if by is not None and by not in source.branches:
            source.close()
            raise DataError(
                f"{path}: tree {source.name!r} has no branch {by!r}, by which this k-fold "
                "model picks the fold model of each event (training.fold_by)"
            )
        return source

    def iter_scores(
        self, source: TreeSource, step_size: int | str = "64 MB", entry_stop: int | None = None
    ) -> Iterator[Scores]:
        """Scores of the entries of ``source``, one array per chunk, in entry order."""
        by = self._folds[0] if self._folds is not None else None
        names = list(self.builder.inputs) + ([by] if by and by not in self.builder.inputs else [])
        for chunk in source.iterate(names, step_size, 0, entry_stop):
            if self._folds is None:
                yield self.predict_matrix(self.builder.matrix(chunk.columns, strict=False))
                continue
            values = chunk.columns[by] if by is not None else None
            if values is None:  # the entry number in the file
                values = np.arange(chunk.entry_start, chunk.entry_stop, dtype=np.int64)
            columns = {k: v for k, v in chunk.columns.items() if k in self.builder.inputs}
            yield pick_scores(self._folds[1], columns, values, False, self._empty)


def _native(
    path: Path, manifest: dict[str, Any], builder: FeatureBuilder
) -> Callable[[Matrix], Scores]:
    from ..train.backend import ModelContext

    kind = manifest["backend"]
    if kind not in ("torch", "keras", "sklearn"):
        raise SourceError(str(path), f"unknown backend {kind!r} in the manifest")
    if not isinstance(manifest.get("native"), str) or not (path / manifest["native"]).is_file():
        raise SourceError(
            str(path), f"the bundle has no native model file ({manifest.get('native')!r})"
        )
    module = importlib.import_module(f"mlaas_jupyter.train.{kind}_backend")
    dataset = manifest.get("dataset")
    seed = int(dataset.get("seed", 0)) if isinstance(dataset, dict) else 0
    n_classes = len(manifest.get("classes") or []) if manifest["task"] == "multiclass" else 1
    context = ModelContext(builder.layout, str(manifest["task"]), n_classes, seed)
    fields = {k: v for k, v in manifest.items() if k not in ("layout", "history")}
    function: Callable[[Matrix], Scores] = module.load_native(path, fields, context)
    return function


def load_bundle(path: str | Path, engine: str = "auto", threads: int | None = None) -> ModelBundle:
    """Load the bundle folder ``path`` for scoring.

    Parameters
    ----------
    path
        A bundle folder (as written by training) or its ``manifest.json``.
    engine
        ``"auto"`` (ONNX Runtime when the bundle has an ONNX model, else native),
        ``"onnxruntime"`` or ``"native"`` (the training library's own format).
    threads
        Intra-op threads of ONNX Runtime (default: up to 4).

    Raises
    ------
    SourceError
        Naming the path, when the bundle is missing, corrupted or lacks the model
        file the engine needs.
    """
    if engine not in ENGINES:
        raise SourceError(str(path), f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    manifest = read_manifest(path)
    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    if manifest.get("folds"):  # a k-fold bundle: every fold's model, each a bundle
        _, by, folders = fold_folders(folder, manifest)
        folds = [load_bundle(where, engine, threads) for where in folders]
        first = folds[0]
        return ModelBundle(
            folder, manifest, first.builder, first.engine, first._function, folds=(by, folds)
        )
    try:
        builder = FeatureBuilder.from_manifest(manifest)
    except MlaasError as err:
        raise SourceError(
            str(folder / "manifest.json"), f"invalid feature description: {err}"
        ) from err
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        message = f"corrupted manifest: bad inputs or layout ({type(err).__name__}: {err})"
        raise SourceError(str(folder / "manifest.json"), message) from err
    onnx = manifest.get("onnx")
    if engine == "onnxruntime" and not onnx:
        raise SourceError(str(folder), "the bundle has no ONNX model; use engine='native'")
    if onnx and engine != "native":
        file = folder / str(onnx)
        if not file.is_file():
            raise SourceError(str(folder), f"the manifest names {onnx!r}, which is missing")
        count = threads if threads is not None else min(4, os.cpu_count() or 1)
        return ModelBundle(
            folder, manifest, builder, "onnxruntime", _OnnxEngine(file, max(1, count))
        )
    function = _LockedEngine(_native(folder, manifest, builder))
    return ModelBundle(folder, manifest, builder, "native", function)
