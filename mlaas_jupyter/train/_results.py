"""What a training run measures and draws: metrics on a split, ROC and score curves.

:func:`evaluate` scores one pass of a stream (the validation split every epoch, the
held-out test split at the end); :func:`_curves` turns the final scores into ROC
curves and score distributions, which :func:`_save_curves` writes to
``plots/curves.json`` and draws as plots. :mod:`.runner` re-exports :func:`evaluate`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..specs.dataset import DatasetSpec
from ..stream.batches import BatchStream
from .backend import Backend
from .metrics import evaluate_scores, roc_points, score_histograms
from .plots import save_plots

__all__ = ["evaluate"]


def _collect(backend: Backend, stream: BatchStream) -> tuple[np.ndarray[Any, Any], ...]:
    ys, ws, scores = [], [], []
    for batch in stream:
        scores.append(backend.predict(batch.x))
        ys.append(batch.y)
        ws.append(batch.w)
    if not ys:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    return np.concatenate(ys), np.concatenate(ws), np.concatenate(scores)


def evaluate(
    backend: Backend, stream: BatchStream
) -> tuple[dict[str, Any], tuple[np.ndarray[Any, Any], ...]]:
    """Metrics of ``backend`` on one pass of ``stream``, and the (y, w, scores) arrays."""
    y, w, scores = _collect(backend, stream)
    metrics = evaluate_scores(stream.spec.task, y, scores, w, labels=stream.spec.labels)
    return metrics, (y, w, scores)


def _curves(
    task: str, labels: tuple[str, ...], y: Any, w: Any, scores: Any, metrics: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    if task == "binary":
        roc = {"curves": {labels[1]: {**roc_points(y, scores, w), "auc": metrics.get("auc")}}}
        return roc, {**score_histograms(y, scores, w, labels), "title": f"P({labels[1]})"}
    if task == "multiclass":
        curves = {
            name: {
                **roc_points((y == k).astype(np.int64), scores[:, k], w),
                "auc": metrics["auc_per_class"].get(name),
            }
            for k, name in enumerate(labels)
        }
        return {"curves": curves}, {
            **score_histograms(y, scores[:, -1], w, labels),
            "title": f"P({labels[-1]})",
        }
    return {"curves": {}}, {}


def _save_curves(
    folder: Path,
    dataset: DatasetSpec,
    history: list[dict[str, Any]],
    y: Any,
    w: Any,
    scores: Any,
    metrics: dict[str, Any],
) -> list[Path]:
    """Write ``plots/curves.json`` (history, ROC, score distributions) and the plots."""
    roc, dists = _curves(dataset.task, dataset.labels, y, w, scores, metrics)
    (folder / "plots").mkdir(exist_ok=True)
    (folder / "plots" / "curves.json").write_text(
        json.dumps({"history": history, "roc": roc, "scores": dists})
    )
    return [folder / "plots" / p for p in save_plots(folder / "plots", history, roc, dists)]
