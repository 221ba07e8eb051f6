"""Metrics of scores against labels, for every task, from NumPy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from .physics import weighted_auc

__all__ = ["evaluate_scores", "roc_points", "score_histograms", "yield_histograms"]

_EPS = 1e-7


def _weighted_mean(values: np.ndarray[Any, Any], w: np.ndarray[Any, Any]) -> float:
    total = float(w.sum())
    return float((values * w).sum() / total) if total > 0 else float(values.mean())


def _auc(
    y: np.ndarray[Any, Any], score: np.ndarray[Any, Any], w: np.ndarray[Any, Any]
) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return None  # AUC is undefined with a single class
    if (w < 0).any():  # sklearn refuses the non-monotonic ROC of negative weights
        return weighted_auc(y == 1, score, w)
    return float(roc_auc_score(y, score, sample_weight=w))


def evaluate_scores(
    task: str,
    y: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    w: np.ndarray[Any, Any],
    labels: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Loss, accuracy and ROC AUC (per class for multi-class); MSE, MAE, R² for regression."""
    if len(y) == 0:
        return {"events": 0}
    out: dict[str, Any] = {"events": len(y)}
    if task == "binary":
        p = np.clip(scores.astype(np.float64), _EPS, 1 - _EPS)
        truth = y.astype(np.float64)
        out["loss"] = _weighted_mean(-(truth * np.log(p) + (1 - truth) * np.log(1 - p)), w)
        out["accuracy"] = _weighted_mean(((p > 0.5) == (truth > 0.5)).astype(np.float64), w)
        out["auc"] = _auc(y, p, w)
    elif task == "multiclass":
        p = np.clip(scores.astype(np.float64), _EPS, 1.0)
        index = y.astype(np.int64)
        out["loss"] = _weighted_mean(-np.log(p[np.arange(len(y)), index]), w)
        out["accuracy"] = _weighted_mean((p.argmax(axis=1) == index).astype(np.float64), w)
        per_class = {}
        for k in range(p.shape[1]):
            name = labels[k] if k < len(labels) else str(k)
            per_class[name] = _auc((index == k).astype(np.int64), p[:, k], w)
        out["auc_per_class"] = per_class
        valid = [v for v in per_class.values() if v is not None]
        out["auc"] = float(np.mean(valid)) if valid else None
    else:
        err = scores.astype(np.float64).ravel() - y.astype(np.float64)
        out["loss"] = _weighted_mean(err**2, w)
        out["mae"] = _weighted_mean(np.abs(err), w)
        variance = _weighted_mean((y - _weighted_mean(y, w)) ** 2, w)
        out["r2"] = 1.0 - out["loss"] / variance if variance > 0 else None
    return out


def roc_points(
    y: np.ndarray[Any, Any], score: np.ndarray[Any, Any], w: np.ndarray[Any, Any], points: int = 200
) -> dict[str, list[float]]:
    """The ROC curve (false/true positive rates), thinned to about ``points`` points."""
    from sklearn.metrics import roc_curve

    if len(np.unique(y)) < 2:
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(y, score, sample_weight=w)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    return {"fpr": fpr[keep].round(6).tolist(), "tpr": tpr[keep].round(6).tolist()}


def score_histograms(
    y: np.ndarray[Any, Any],
    score: np.ndarray[Any, Any],
    w: np.ndarray[Any, Any],
    labels: tuple[str, ...],
    bins: int = 40,
) -> dict[str, Any]:
    """Weighted, normalised score distributions per class (``hist`` histograms)."""
    import hist

    axis = hist.axis.Regular(bins, 0.0, 1.0, name="score")
    out: dict[str, Any] = {"edges": axis.edges.round(6).tolist(), "classes": {}}
    for k, name in enumerate(labels):
        chosen = y == k
        h = hist.Hist(axis, storage=hist.storage.Weight())
        h.fill(score=np.clip(score[chosen], 0.0, 1.0 - 1e-9), weight=w[chosen])
        total = h.values().sum()
        out["classes"][name] = (h.values() / total if total > 0 else h.values()).round(6).tolist()
    return out


def yield_histograms(
    y: np.ndarray[Any, Any],
    score: np.ndarray[Any, Any],
    yields: np.ndarray[Any, Any],
    labels: tuple[str, ...],
    bins: int = 40,
) -> dict[str, Any]:
    """Score distributions per class in expected events per bin (weighted with each
    event's expected yield), with their statistical errors ``sqrt(sum w^2)``."""
    import hist

    axis = hist.axis.Regular(bins, 0.0, 1.0, name="score")
    out: dict[str, Any] = {"edges": axis.edges.round(6).tolist(), "classes": {}, "errors": {}}
    for k, name in enumerate(labels):
        chosen = y == k
        h = hist.Hist(axis, storage=hist.storage.Weight())
        h.fill(score=np.clip(score[chosen], 0.0, 1.0 - 1e-9), weight=yields[chosen])
        out["classes"][name] = h.values().tolist()
        out["errors"][name] = np.sqrt(h.variances()).tolist()
    return out
