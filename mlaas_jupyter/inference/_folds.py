"""Scoring with the bundle of a k-fold training: one model per fold, picked per event.

The manifest's ``folds`` section (``{"k", "by", "models": [{"fold", "native", "onnx",
...}]}``) names each fold's model; each lives in ``fold{i}/``, a bundle of its own with
its own normalisation. An event whose fold (``value % k``) is ``i`` was tested, never
trained on, by model ``i``, so model ``i`` scores it: the fold value is the ``fold_by``
branch (``by``) or, without one, the entry number in its file. Events of no known fold
(in-memory rows without the ``by`` key, or any rows when ``by`` is the entry number)
get the mean of the k models' scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import DataError, SourceError
from ..stream._folds import fold_of
from ..stream.features import FeatureBuilder


class FoldModel(Protocol):
    """One fold's model (a :class:`~.bundle.ModelBundle`): its features and scores."""

    builder: FeatureBuilder

    def predict_matrix(self, x: Any) -> np.ndarray[Any, Any]: ...


__all__ = ["FoldModel", "fold_folders", "fold_values", "pick_scores"]


def fold_folders(folder: Path, manifest: dict[str, Any]) -> tuple[int, str | None, list[Path]]:
    """``(k, by, [fold folders])`` of a k-fold bundle's manifest (checked)."""
    section = manifest["folds"]
    file = str(folder / "manifest.json")
    try:
        k, by, models = int(section["k"]), section.get("by"), list(section["models"])
        folders = [folder / Path(str(model["native"])).parent for model in models]
    except (KeyError, TypeError, ValueError) as err:
        raise SourceError(file, f"corrupted manifest: bad folds section ({err!r})") from err
    if k < 2 or len(folders) != k or (by is not None and not isinstance(by, str)):
        raise SourceError(file, f"corrupted manifest: folds names {len(folders)} models, k={k}")
    return k, by, folders


def fold_values(columns: Mapping[str, Any], by: str | None) -> tuple[dict[str, Any], Any]:
    """The columns without the ``by`` key, and its values (None when absent)."""
    rest = dict(columns)
    if by is None or by not in rest:
        return rest, None
    raw = rest.pop(by)
    values = np.asarray(raw)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values % 1 == 0):
        values = values.astype(np.int64)
    if values.ndim != 1 or values.dtype.kind not in "iub":
        raise DataError(f"{by!r} picks the fold of each event: expected one integer per event")
    return rest, values


def pick_scores(
    folds: Sequence[FoldModel],
    columns: Mapping[str, Any],
    values: Any,
    strict: bool,
    empty: Callable[[], np.ndarray[Any, Any]],
) -> np.ndarray[Any, Any]:
    """Each event scored by the model of its fold (``values % k``), or by the mean of
    the k models when ``values`` is None."""
    matrices = [fold.builder.matrix(columns, strict) for fold in folds]
    n = len(matrices[0])
    if n == 0:
        return empty()
    if values is None:
        total = sum(
            fold.predict_matrix(x).astype(np.float64)
            for fold, x in zip(folds, matrices, strict=True)
        )
        return np.asarray(total / len(folds), dtype=np.float32)
    chosen = fold_of(values, len(folds))
    if len(chosen) != n:
        raise DataError(f"{len(chosen)} fold values for {n} events")
    scores: np.ndarray[Any, Any] | None = None
    for index, (fold, x) in enumerate(zip(folds, matrices, strict=True)):
        mask = chosen == index
        if not mask.any():
            continue
        part = fold.predict_matrix(x[mask])
        if scores is None:
            scores = np.zeros((n, *part.shape[1:]), dtype=part.dtype)
        scores[mask] = part
    assert scores is not None  # n > 0: some fold has events
    return scores
