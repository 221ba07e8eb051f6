"""The training report of a finished run: score the splits again, build, write, tell.

:func:`report_for_run` reads at most ``training.report.max_events`` events of the
report's split (the test split, else validation) with their input matrix, and as many
of the training split, scores both with the trained model, then writes
``RUN_DIR/report.json`` and its plots (:mod:`.report`) and emits
``{"type": "report", "path": ..., "flagged": [...]}`` (and a note per flagged class).
The streams are fresh, unsharded and read in this thread, so a data-parallel run's
rank 0 reports on the same events as one process would.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..specs.training import TrainSpec
from ..stream.batches import BatchStream
from ..stream.layout import FeatureLayout
from ..stream.stats import DatasetStats
from ._report_ranking import native_importance, variables_of
from .backend import Backend
from .report import build_report, write_report

__all__ = ["report_for_run", "score_split"]

Array = np.ndarray[Any, Any]


def score_split(
    backend: Backend, stream: BatchStream, keep_x: bool = False
) -> tuple[Array | None, Array, Array, Array]:
    """(x or None, y, w, scores) of one pass of ``stream`` (its ``limit`` caps it)."""
    xs, ys, ws, scores = [], [], [], []
    for batch in stream:
        scores.append(np.asarray(backend.predict(batch.x)))
        if keep_x:
            xs.append(np.array(batch.x, dtype=np.float32))
        ys.append(np.array(batch.y))
        ws.append(np.array(batch.w, dtype=np.float64))
    if not ys:
        return (np.zeros((0, stream.width), np.float32) if keep_x else None,
                np.zeros(0), np.zeros(0), np.zeros(0))  # fmt: skip
    x = np.concatenate(xs) if keep_x else None
    return x, np.concatenate(ys), np.concatenate(ws), np.concatenate(scores)


def _stream(spec: TrainSpec, stats: DatasetStats, split: str, cap: int) -> BatchStream:
    """A capped pass over ``split``: shuffled when it holds more than ``cap`` events,
    so the events used are a random sample of all files, not the first ones read."""
    many = sum(stats.split_events(split)) > cap
    return BatchStream(
        spec.dataset,
        split,
        spec.training.batch_size or 4096,
        stats=stats,
        shuffle=many,
        limit=cap if many else None,
        loader="thread",
    )


def report_for_run(
    folder: Path,
    spec: TrainSpec,
    backend: Backend,
    layout: FeatureLayout,
    stats: DatasetStats,
    split: str,
    emit: Callable[[dict[str, Any]], None],
    *,
    style: str | None = None,
) -> Path:
    """Write ``folder/report.json`` (and ``folder/plots/report_*.png``) of the trained
    ``backend`` on ``split``, compared with the training split; return its path."""
    dataset, settings = spec.dataset, spec.training.report
    cap = settings.max_events
    stream = _stream(spec, stats, split, cap)
    x, y, w, scores = score_split(backend, stream, keep_x=True)
    train = None
    if split != "train" and sum(stats.split_events("train")) > 0:
        _, ty, tw, ts = score_split(backend, _stream(spec, stats, "train", cap))
        train = (ty, tw, ts)
    if dataset.task == "regression":
        scores = np.ravel(scores)
        train = None if train is None else (train[0], train[1], np.ravel(train[2]))
    report = build_report(
        dataset.task,
        dataset.labels,
        y,
        w,
        scores,
        x=x,
        train=train,
        layout=layout,
        predict=lambda matrix: _predict(backend, matrix, spec.training.batch_size or 4096),
        native=native_importance(backend, variables_of(layout, layout.width)),
        split=split,
        settings=settings,
        seed=dataset.seed,
    )
    for name, used in (("test", len(y)), ("train", len(train[0]) if train else 0)):
        total = sum(stats.split_events(split if name == "test" else name))
        if used >= cap and total > used:  # the stream's limit took a random sample
            report["notes"].append(
                f"{split if name == 'test' else name}: {used} of {total} events used "
                f"(training.report.max_events)"
            )
    path = write_report(folder, report, style=style)
    flagged = list((report.get("overtraining") or {}).get("flagged", []))
    emit({"type": "report", "path": str(path), "flagged": flagged})
    for name in flagged:
        entry = report["overtraining"]["classes"][name]
        emit({
            "type": "note",
            "message": f"overtraining: the {report['overtraining']['score']} distributions of "
            f"{name} differ between the training and {split} splits (Kolmogorov-Smirnov "
            f"p = {entry['ks_pvalue']:.3g} < {settings.ks_threshold:g}); see {path}",
        })  # fmt: skip
    return path


def _predict(backend: Backend, x: Array, batch_size: int) -> Array:
    """The model's scores of ``x`` in batches of the training's size (a model file may
    expect no bigger ones; a GPU holds them)."""
    step = max(batch_size, 4096)
    parts = [np.asarray(backend.predict(x[a : a + step])) for a in range(0, len(x), step)]
    if not parts:
        return np.zeros(0)
    out = np.concatenate(parts)
    return np.ravel(out) if out.ndim == 2 and out.shape[1] == 1 else out
