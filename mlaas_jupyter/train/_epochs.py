"""The epoch loop of a training run: train, validate, checkpoint, resume, stop early.

:func:`_fit` runs the epochs of one backend over the training stream, evaluates the
validation split after each, keeps the ``best`` and ``last`` checkpoints and the
``progress.json`` a resumed run continues from, and stops early when the monitored loss
no longer improves; :class:`_Progress` throttles per-batch ``progress`` events.
:mod:`.runner` drives it and re-exports :data:`EventSink`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..specs.training import TrainSpec
from ..stream.batches import BatchStream, EpochReport
from ._results import evaluate
from .backend import Backend

__all__ = ["EventSink"]

EventSink = Callable[[dict[str, Any]], None]


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
