"""`train()`: one training run from a :class:`TrainSpec` to a bundle.

This is the single core function behind ``mlaas train``, the job executors, the
REST API and the ``%mlaas`` magic. It streams the data, trains with true epochs,
validates every epoch, stops early, checkpoints every epoch (and resumes), then
measures the held-out test split, saves plots and writes the bundle.

Progress is reported as plain dict events to ``on_event``::

    {"type": "epoch", "epoch": 3, "epochs": 10, "loss": 0.41, "val_loss": 0.43,
     "val_auc": 0.93, "events_per_s": 512000.0, ...}

Event types: ``start``, ``stats``, ``model``, ``progress`` (throttled, about one
per second), ``epoch``, ``early_stop``, ``note``, ``test``, ``done``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..stream.batches import BatchStream, EpochReport
from ..stream.layout import FeatureLayout
from ..stream.stats import compute_stats, plan_for
from .backend import Backend, ModelContext, make_backend
from .bundle import write_bundle
from .metrics import evaluate_scores, roc_points, score_histograms
from .plots import save_plots
from .spec import ModelSpec, TrainSpec

__all__ = ["EventSink", "TrainResult", "evaluate", "train"]

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """Where a finished run put its things, and how well the model did."""

    run_dir: Path
    bundle: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)


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


def _run_dir(spec: TrainSpec, run_dir: str | Path | None) -> tuple[Path, str]:
    name = spec.training.name or (spec.model.name or Path(spec.model.file or "model").stem)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    if run_dir is not None:
        return Path(run_dir), name
    # a new folder per run: two runs started in the same second must not share one
    base = Path(spec.training.output) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    folder, number = base, 1
    while True:
        try:
            folder.mkdir()
            return folder, name
        except FileExistsError:
            number += 1
            folder = base.with_name(f"{base.name}-{number}")


class _Progress:
    """Turns per-batch stream reports into at most one ``progress`` event a second."""

    def __init__(self, emit: EventSink, epoch: int, batches: int) -> None:
        self.emit, self.epoch, self.batches = emit, epoch, batches
        self.last = time.perf_counter()  # the first report after a second, not at batch 1

    def __call__(self, report: EpochReport) -> None:
        now = time.perf_counter()
        if now - self.last < 1.0:
            return
        self.last = now
        rate = report.events / report.seconds if report.seconds else 0.0
        self.emit(
            {
                "type": "progress",
                "epoch": self.epoch,
                "batch": report.batches,
                "batches": self.batches,
                "events": report.events,
                "events_per_s": round(rate, 1),
            }
        )


def train(
    spec: TrainSpec | str | Path,
    *,
    on_event: EventSink | None = None,
    run_dir: str | Path | None = None,
    model: Any = None,
    cache: Any = True,
) -> TrainResult:
    """Train the model of ``spec`` and write its bundle into ``run_dir/bundle``.

    Parameters
    ----------
    spec
        A :class:`TrainSpec` or the path of its YAML/JSON file.
    on_event
        Called with each progress event (a JSON-serialisable dict).
    run_dir
        Folder of this run (checkpoints, plots, bundle); by default a new folder
        under ``training.output``. With ``training.resume`` an existing run folder
        continues from its last checkpoint.
    model
        A Keras model or ``torch.nn.Module`` object to train instead of ``spec.model``.
    """
    if not isinstance(spec, TrainSpec):
        spec = TrainSpec.from_file(spec)
    if model is not None:
        spec = replace(spec, model=ModelSpec(name=None, instance=model))
    emit: EventSink = on_event or (lambda event: None)
    folder, name = _run_dir(spec, run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    config, dataset = spec.training, spec.dataset
    emit({"type": "start", "run_dir": str(folder), "name": name, "task": dataset.task})

    stats = compute_stats(dataset, cache=cache)
    train_events = stats.split_events("train")
    if dataset.task != "regression":
        present = [dataset.labels[k] for k, n in enumerate(train_events) if n > 0]
        if len(present) < 2:
            raise TrainingError(
                "the training split has events of only one class "
                f"({', '.join(present) or 'none'}); "
                f"events per class: {dict(zip(dataset.labels, train_events, strict=False))}"
            )
    streams = {
        split: BatchStream(
            dataset,
            split,
            config.batch_size,
            stats=stats,
            loader=_loader(spec) if split == "train" else "thread",
            # the test split is read once: nothing to gain from keeping it
            epoch_cache_mb=config.epoch_cache_mb if split != "test" else 0,
        )
        for split in ("train", "validation", "test")
        if sum(stats.split_events(split)) > 0
    }
    layout: FeatureLayout = streams["train"].layout
    emit(
        {
            "type": "stats",
            "events": dict(
                zip(
                    ("train", "validation", "test"),
                    map(sum, zip(*stats.events, strict=True)),
                    strict=True,
                )
            ),
            "width": layout.width,
            "features": [f.name for f in layout.features],
            "cached": stats.entries_read == 0,
        }
    )
    n_classes = len(dataset.labels) if dataset.task == "multiclass" else 1
    context = ModelContext(layout, dataset.task, n_classes, dataset.seed)
    backend = make_backend(spec.model, context, config)
    emit({"type": "model", "backend": backend.kind, "device": backend.device, "idim": layout.width})

    try:
        history = _fit(backend, streams, spec, folder / "checkpoint", emit)
    finally:
        streams["train"].close()  # the loader process, if any, is not needed any more
    for note in getattr(backend, "notes", []):
        emit({"type": "note", "message": note})

    final = streams.get("test") or streams.get("validation") or streams["train"]
    metrics, (y, w, scores) = evaluate(backend, final)
    metrics["split"] = final.split
    roc, dists = _curves(dataset.task, dataset.labels, y, w, scores, metrics)
    (folder / "plots").mkdir(exist_ok=True)
    (folder / "plots" / "curves.json").write_text(
        json.dumps({"history": history, "roc": roc, "scores": dists})
    )
    plots = [folder / "plots" / p for p in save_plots(folder / "plots", history, roc, dists)]
    emit({"type": "test", **metrics})

    bundle = write_bundle(
        folder / "bundle", name, backend, spec, layout, plan_for(dataset), stats, metrics, history
    )
    emit({"type": "done", "bundle": str(bundle), "metrics": metrics})
    return TrainResult(folder, bundle, metrics, history, plots)


def _loader(spec: TrainSpec) -> str:
    """Reading in a child process keeps a Python training loop from sharing the GIL with
    uproot and awkward; the BDT reads everything at once and needs no such help."""
    if spec.training.loader != "auto":
        return spec.training.loader
    many_cores = (os.cpu_count() or 1) > 1
    return "process" if many_cores and spec.model.resolved_backend != "sklearn" else "thread"


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


def _fit(
    backend: Backend,
    streams: dict[str, BatchStream],
    spec: TrainSpec,
    checkpoints: Path,
    emit: EventSink,
) -> list[dict[str, Any]]:
    """The epoch loop: train, validate, checkpoint, stop early; returns the history."""
    config = spec.training
    train_stream, validation = streams["train"], streams.get("validation")
    if backend.epochless:
        started = time.perf_counter()
        loss = backend.fit(train_stream, validation)
        record = _epoch_record(backend, 1, 1, loss, validation, train_stream, started)
        emit({"type": "epoch", **record})
        return [record]
    progress_file = checkpoints / "progress.json"
    history: list[dict[str, Any]] = []
    best, best_epoch, start = float("inf"), 0, 0
    if config.resume and progress_file.exists():
        state = json.loads(progress_file.read_text())
        backend.load_checkpoint(checkpoints / "last")
        history, best, best_epoch, start = (
            state["history"],
            state["best"],
            state["best_epoch"],
            state["epoch"],
        )
        if state.get("stopped_early"):
            emit(
                {
                    "type": "note",
                    "message": f"the checkpointed run stopped early at epoch {start} "
                    f"(best epoch {best_epoch}): nothing left to train",
                }
            )
            start = config.epochs
        else:
            emit({"type": "note", "message": f"resumed from the checkpoint of epoch {start}"})
            train_stream.warm_cache()  # cached epochs then shuffle as in the first run
    checkpoints.mkdir(parents=True, exist_ok=True)
    for epoch in range(start, config.epochs):
        started = time.perf_counter()
        train_stream.epoch = epoch  # the shuffle of each epoch depends on (seed, epoch) only
        train_stream.on_batch = _Progress(emit, epoch + 1, len(train_stream))
        loss = backend.train_epoch(train_stream)
        train_stream.on_batch = None
        record = _epoch_record(
            backend, epoch + 1, config.epochs, loss, validation, train_stream, started
        )
        history.append(record)
        monitored = record.get("val_loss", loss)
        if monitored < best - config.min_delta:
            best, best_epoch = monitored, epoch + 1
            backend.save_checkpoint(checkpoints / "best")
        backend.save_checkpoint(checkpoints / "last")
        stop = config.early_stopping is not None and epoch + 1 - best_epoch >= config.early_stopping
        state = {"epoch": epoch + 1, "history": history, "best": best, "best_epoch": best_epoch}
        partial = progress_file.with_name(progress_file.name + ".partial")
        partial.write_text(json.dumps({**state, "stopped_early": stop}))
        os.replace(partial, progress_file)  # never a half-written progress file to resume from
        # announced once checkpointed: a run stopped at this event resumes after this epoch
        emit({"type": "epoch", **record})
        if stop:
            emit({"type": "early_stop", "epoch": epoch + 1, "best_epoch": best_epoch})
            break
    if best_epoch and best_epoch != len(history):
        backend.load_checkpoint(checkpoints / "best")
    return history


def _epoch_record(
    backend: Backend,
    epoch: int,
    epochs: int,
    loss: float,
    validation: BatchStream | None,
    train_stream: BatchStream,
    started: float,
) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    events = train_stream.report.events
    record: dict[str, Any] = {
        "epoch": epoch,
        "epochs": epochs,
        "loss": float(loss),
        "events": events,
        "events_per_s": round(events / seconds, 1) if seconds else None,
        "seconds": round(seconds, 3),
    }
    if validation is not None:
        metrics, _ = evaluate(backend, validation)
        record.update({f"val_{k}": v for k, v in metrics.items() if k != "events"})
    return record
