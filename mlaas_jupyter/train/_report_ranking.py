"""The ranking of the input variables: permutation importance, and the BDT's split gains.

The importance of a variable is the metric lost when its columns are permuted across
events (the same permutation for all of them, so a jagged collection's branch moves as
one block and its objects stay together): the weighted AUC of the signal class against
the rest (the last class) for classification, the weighted R^2 for regression. A
collection's mask (1 for a real object, 0 for padding) is shared by its branches: it is
not permuted with a member branch but ranked as a variable of its own (kind ``mask``),
which measures what the object count alone carries. Each column is ranked on its own
too (a flat variable's one column is its variable: the same numbers). Every permutation
is repeated ``repeats`` times with a fixed seed; the importance is the mean loss, with
its standard deviation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..stream.layout import FeatureLayout
from .physics import signal_scores, weighted_auc

__all__ = ["Variable", "metric", "native_importance", "permutation_ranking", "variables_of"]

Array = np.ndarray[Any, Any]
#: (name, kind, column indices, column names)
Variable = tuple[str, str, list[int], list[str]]


def variables_of(layout: FeatureLayout | None, width: int) -> list[Variable]:
    """The variables of the matrix with their columns (without a layout: one flat
    variable ``x[i]`` per column)."""
    if layout is None:
        return [(f"x[{i}]", "flat", [i], [f"x[{i}]"]) for i in range(width)]
    return [
        (f.name, f.kind, list(range(f.offset, f.offset + f.width)), f.columns)
        for f in layout.features
    ]


def metric(task: str, y: Array, scores: Array, w: Array) -> float | None:
    """The weighted AUC of the signal class (classification) or R^2 (regression)."""
    if task == "regression":
        truth = np.asarray(y, dtype=np.float64)
        residual = np.ravel(scores).astype(np.float64) - truth
        weight = w if np.sum(w) > 0 else np.ones(len(w))
        mean = float((truth * weight).sum() / weight.sum())
        variance = float((weight * (truth - mean) ** 2).sum())
        if not variance > 0:
            return None
        return 1.0 - float((weight * residual**2).sum()) / variance
    signal, score = signal_scores(task, y, scores)
    return weighted_auc(signal, score, w)


def _loss(
    predict: Callable[[Array], Array],
    task: str,
    x: Array,
    y: Array,
    w: Array,
    columns: list[int],
    baseline: float,
    rng: np.random.Generator,
    repeats: int,
) -> tuple[float | None, float | None]:
    original = x[:, columns].copy()
    losses = []
    try:
        for _ in range(repeats):
            x[:, columns] = original[rng.permutation(len(x))]
            value = metric(task, y, predict(x), w)
            if value is not None:
                losses.append(baseline - value)
    finally:
        x[:, columns] = original
    if not losses:
        return None, None
    return float(np.mean(losses)), float(np.std(losses))


def permutation_ranking(
    predict: Callable[[Array], Array],
    task: str,
    x: Array,
    y: Array,
    w: Array,
    variables: Sequence[Variable],
    *,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Importance of every variable and column (see the module's docstring), most
    important first; ``baseline`` is the metric of the unpermuted events."""
    x = np.array(x, dtype=np.float32)  # a copy: columns are permuted in place
    y, w = np.asarray(y), np.asarray(w, dtype=np.float64)
    baseline = metric(task, y, predict(x), w) if len(x) else None
    ranked: list[dict[str, Any]] = []
    columns: list[dict[str, Any]] = []
    for index, (name, kind, cols, names) in enumerate(variables):
        mean = std = None
        if baseline is not None:
            rng = np.random.default_rng([seed, index])
            mean, std = _loss(predict, task, x, y, w, cols, baseline, rng, repeats)
        ranked.append({"name": name, "kind": kind, "importance": mean, "std": std})
        for k, (col, col_name) in enumerate(zip(cols, names, strict=True)):
            if len(cols) > 1 and baseline is not None:
                rng = np.random.default_rng([seed, index, k + 1])
                mean, std = _loss(predict, task, x, y, w, [col], baseline, rng, repeats)
            columns.append({"name": col_name, "variable": name, "importance": mean, "std": std})
    return {
        "metric": "r2" if task == "regression" else "auc",
        "baseline": baseline,
        "events": len(x),
        "repeats": repeats,
        "variables": sorted(ranked, key=_order),
        "columns": sorted(columns, key=_order),
    }


def _order(entry: dict[str, Any]) -> float:
    value = entry["importance"]
    return -value if value is not None else float("inf")


def native_importance(backend: Any, variables: Sequence[Variable]) -> list[dict[str, Any]] | None:
    """The BDT's importance of each variable: its share of the summed split gains of all
    trees (scikit-learn's histogram gradient boosting); None for other models."""
    estimator = getattr(backend, "estimator", None)
    predictors = getattr(estimator, "_predictors", None)
    if not predictors:
        return None
    width = max((c for _, _, cols, _ in variables for c in cols), default=-1) + 1
    gains = np.zeros(max(width, 1))
    for iteration in predictors:
        for tree in iteration:
            nodes = tree.nodes
            split = nodes["is_leaf"] == 0
            features = nodes["feature_idx"][split].astype(np.int64)
            np.add.at(gains, features[features < len(gains)], nodes["gain"][split])
    total = float(gains.sum())
    shares = gains / total if total > 0 else gains
    out = [
        {"name": name, "importance": float(shares[cols].sum())} for name, _, cols, _ in variables
    ]
    return sorted(out, key=lambda entry: -entry["importance"])
