"""What a training run measures and draws: metrics on a split, ROC and score curves.

:func:`evaluate` scores one pass of a stream (the validation split every epoch, the
held-out test split at the end); :func:`_curves` turns the final scores into ROC
curves and score distributions, and :func:`_hep_curves` into the physics view (the
rejection curve, the distributions in expected events); :func:`_save_curves` adds the
physics metrics to the test metrics, writes all curves to ``plots/curves.json`` and
draws them. :mod:`.runner` re-exports :func:`evaluate`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..specs.dataset import DatasetSpec
from ..specs.training import TrainSpec
from ..stream.batches import BatchStream
from ..stream.layout import FeatureLayout
from ..stream.stats import DatasetStats, plan_for
from ._hep_plots import signal_scale
from .backend import Backend
from .bundle import write_bundle
from .metrics import evaluate_scores, roc_points, score_histograms, yield_histograms
from .physics import physics_metrics, rejection_curve, signal_scores
from .plots import save_plots

__all__ = ["evaluate"]


def collect_scores(
    predict: Callable[[np.ndarray[Any, Any]], Any], stream: BatchStream
) -> tuple[np.ndarray[Any, Any], ...]:
    """(labels, weights, scores) of one pass of ``stream``, scored by ``predict``."""
    ys, ws, scores = [], [], []
    for batch in stream:
        scores.append(np.asarray(predict(batch.x)))
        ys.append(batch.y)
        ws.append(batch.w)
    if not ys:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    return np.concatenate(ys), np.concatenate(ws), np.concatenate(scores)


def evaluate(
    backend: Backend, stream: BatchStream
) -> tuple[dict[str, Any], tuple[np.ndarray[Any, Any], ...]]:
    """Metrics of ``backend`` on one pass of ``stream``, and the (y, w, scores) arrays."""
    y, w, scores = collect_scores(backend.predict, stream)
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


def _hep_curves(
    task: str, labels: tuple[str, ...], y: Any, scores: Any, yields: Any, metrics: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rejection curve and the score distributions in expected events (signal: the
    last class; nothing for regression)."""
    if task not in ("binary", "multiclass") or not len(y):
        return {}, {}
    signal, score = signal_scores(task, y, scores)
    name = labels[-1]
    rejection = {
        **rejection_curve(signal, score, yields),
        "auc": metrics.get("auc_weighted"),
        "signal": name,
    }
    dists = {**yield_histograms(y, score, yields, labels), "title": f"P({name})", "signal": name}
    background = sum(sum(v) for k, v in dists["classes"].items() if k != name)
    dists["signal_scale"] = signal_scale(sum(dists["classes"][name]), background)
    return rejection, dists


def _save_curves(
    folder: Path,
    dataset: DatasetSpec,
    history: list[dict[str, Any]],
    y: Any,
    w: Any,
    scores: Any,
    metrics: dict[str, Any],
    *,
    yields: Any = None,
    style: str | None = None,
) -> list[Path]:
    """Add the physics metrics to ``metrics``, write ``plots/curves.json`` (history,
    ROC, score distributions, rejection, yields) and the plots in the experiment
    ``style``. ``yields`` holds each test event's expected yield (None: its weight)."""
    luminosity = dataset.luminosity
    yields = np.asarray(w if yields is None else yields, dtype=np.float64)
    metrics.update(physics_metrics(dataset.task, y, scores, yields, luminosity))
    roc, dists = _curves(dataset.task, dataset.labels, y, w, scores, metrics)
    rejection, in_events = _hep_curves(dataset.task, dataset.labels, y, scores, yields, metrics)
    if in_events:
        in_events["luminosity"] = luminosity
    curves = {"history": history, "roc": roc, "scores": dists}
    if rejection:
        curves.update(rejection=rejection, yields=in_events)
    (folder / "plots").mkdir(exist_ok=True)
    (folder / "plots" / "curves.json").write_text(json.dumps(curves))
    written = save_plots(
        folder / "plots",
        history,
        roc,
        dists,
        rejection=rejection,
        yields=in_events,
        style=style,
        luminosity=luminosity,
    )
    return [folder / "plots" / p for p in written]


def expected_yields(
    stream: BatchStream, y: np.ndarray[Any, Any], w: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any] | None:
    """Each scored event's share of its class's expected yield over the whole dataset.

    The stream's weights carry the balancing factor of their class; without it they
    are the normalised weights (expected events at the spec's luminosity, or plain
    event weights). One split holds a part of each class, so its events are scaled up
    to the class's yield over all splits: the sum over a class is that class's yield.
    """
    if stream.spec.task == "regression" or len(y) == 0:
        return None
    labels = y.astype(np.int64)
    factor = stream.class_factor.astype(np.float64)[labels]
    physical: np.ndarray[Any, Any] = np.divide(w, factor, out=np.zeros(len(w)), where=factor > 0)
    for k, row in enumerate(stream.stats.weights):
        chosen = labels == k
        seen = float(physical[chosen].sum())
        if seen != 0.0:
            physical[chosen] *= float(sum(row)) / seen
    return physical


def finish_run(
    folder: Path,
    name: str,
    spec: TrainSpec,
    backend: Backend,
    layout: FeatureLayout,
    stats: DatasetStats,
    history: list[dict[str, Any]],
    final: BatchStream,
    scored: tuple[np.ndarray[Any, Any], ...],
    metrics: dict[str, Any],
    emit: Callable[[dict[str, Any]], None],
) -> tuple[Path, list[Path]]:
    """After the last epoch, of one process or of data-parallel rank 0: the curves and
    plots of the ``final`` split's scores, the ``test`` event, the training report
    (``report.json``, also in the bundle; a ``report`` event), the bundle, ``done``."""
    dataset = spec.dataset
    y, w, scores = scored
    metrics["split"] = final.split
    style = spec.training.style if spec.training.style != "none" else None
    yields = expected_yields(final, y, w)
    plots = _save_curves(
        folder, dataset, history, y, w, scores, metrics, yields=yields, style=style
    )
    emit({"type": "test", **metrics})
    report = _report(folder, spec, backend, layout, stats, final.split, emit, style)
    bundle = write_bundle(
        folder / "bundle",
        name,
        backend,
        spec,
        layout,
        plan_for(dataset),
        stats,
        metrics,
        history,
        report=report,
    )
    emit({"type": "done", "bundle": str(bundle), "metrics": metrics})
    return bundle, plots


def _report(
    folder: Path,
    spec: TrainSpec,
    backend: Backend,
    layout: FeatureLayout,
    stats: DatasetStats,
    split: str,
    emit: Callable[[dict[str, Any]], None],
    style: str | None,
) -> Path | None:
    """The training report (:mod:`._report_run`); a report that cannot be made is a
    note, not the loss of the trained model."""
    from ._report_run import report_for_run

    try:
        return report_for_run(folder, spec, backend, layout, stats, split, emit, style=style)
    except Exception as err:  # the model is trained: keep it
        emit({"type": "note", "message": f"the training report could not be written: {err}"})
        return None
