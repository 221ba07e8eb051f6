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

The epoch loop and its checkpoints are in :mod:`._epochs`; the evaluation, curves and
plots in :mod:`._results`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..specs.training import AUTO_BATCH, AUTO_MIN_STEPS, ModelSpec, TrainSpec
from ..stream.batches import BatchStream
from ..stream.layout import FeatureLayout
from ..stream.stats import compute_stats
from ._epochs import EventSink, _fit
from ._folds import train_folds
from ._outcome import TrainResult
from ._results import evaluate, finish_run
from ._runs import latest_resumable, write_run_record
from .backend import ModelContext, make_backend

__all__ = ["EventSink", "TrainResult", "evaluate", "train"]


def _run_dir(spec: TrainSpec, run_dir: str | Path | None) -> tuple[Path, str]:
    name = spec.training.name or (spec.model.name or Path(spec.model.file or "model").stem)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    if run_dir is not None:
        return Path(run_dir), name
    if spec.training.resume:  # the latest checkpointed run of this spec, or NotFound
        return latest_resumable(spec), name
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


def train(
    spec: TrainSpec | str | Path,
    *,
    on_event: EventSink | None = None,
    run_dir: str | Path | None = None,
    model: Any = None,
    cache: Any = True,
    progress: bool | None = False,
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
        continues from its last checkpoint; without ``run_dir``, the latest checkpointed
        run of the same spec under ``training.output``, unless it has finished
        (:mod:`._runs`).
    model
        A Keras model or ``torch.nn.Module`` object to train instead of ``spec.model``.
    progress
        A ``tqdm`` bar of the statistics pass: True, False (the default: jobs report
        events, not bars), or None where someone watches (a notebook, or a terminal).
        The epochs are reported as events, which ``mlaas train`` draws as bars.
    """
    if not isinstance(spec, TrainSpec):
        spec = TrainSpec.from_file(spec)
    if model is not None:
        spec = spec.model_copy(update={"model": ModelSpec(name=None, instance=model)})
    emit: EventSink = on_event or (lambda event: None)
    if spec.training.workers > 1:  # data-parallel: a model that cannot be fails before reading
        from .distributed import check_data_parallel

        check_data_parallel(spec)
    folder, name = _run_dir(spec, run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_run_record(folder, spec)  # what --resume without a run folder looks for
    config, dataset = spec.training, spec.dataset
    emit({"type": "start", "run_dir": str(folder), "name": name, "task": dataset.task})
    if run_dir is None and config.resume:
        emit({"type": "note", "message": f"resuming the latest run of this spec, {folder}"})
    for note in spec.notes:  # e.g. what became of each key of MLaaS4HEP's params.json
        emit({"type": "note", "message": note})
    if config.folds > 1:  # k models, each in RUN_DIR/fold{i}, combined out of fold
        return train_folds(spec, folder, name, emit, train, cache=cache, progress=progress)

    stats = compute_stats(dataset, cache=cache, progress=progress, scheduler=spec.cluster)
    for note in stats.notes:  # friend trees of scores that a class glob matched
        emit({"type": "note", "message": note})
    train_events = stats.split_events("train")
    if dataset.task != "regression":
        present = [dataset.labels[k] for k, n in enumerate(train_events) if n > 0]
        if len(present) < 2:
            raise TrainingError(
                "the training split has events of only one class "
                f"({', '.join(present) or 'none'}); "
                f"events per class: {dict(zip(dataset.labels, train_events, strict=False))}"
            )
    batch = config.batch_for(sum(train_events))
    if config.batch_size is None:  # the default: 1024, or fewer for a small training split
        spec = spec.with_training(batch_size=batch)
        config = spec.training
        if batch != AUTO_BATCH:
            emit({"type": "note", "message": _small_split_note(batch, train_events)})
    streams = {
        split: BatchStream(
            dataset,
            split,
            batch,
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
    if config.workers > 1:  # the ranks train, rank 0 writes (see .distributed)
        from .distributed import train_data_parallel

        ranks = train_data_parallel(spec, stats, folder, name, emit)
        plotted = [Path(p) for p in ranks["plots"]]
        return TrainResult(
            folder, Path(ranks["bundle"]), ranks["metrics"], ranks["history"], plotted
        )
    n_classes = len(dataset.labels) if dataset.task == "multiclass" else 1
    context = ModelContext(layout, dataset.task, n_classes, dataset.seed, stats.target_scale())
    backend = make_backend(spec.model, context, config)
    emit({"type": "model", "backend": backend.kind, "device": backend.device, "idim": layout.width})
    shown = len(getattr(backend, "notes", []))  # notes of building the model, said now
    for note in getattr(backend, "notes", [])[:shown]:
        emit({"type": "note", "message": note})

    try:
        history = _fit(backend, streams, spec, folder / "checkpoint", emit)
    finally:
        streams["train"].close()  # the loader process, if any, is not needed any more
    for note in getattr(backend, "notes", [])[shown:]:
        emit({"type": "note", "message": note})

    final = streams.get("test") or streams.get("validation") or streams["train"]
    metrics, (y, w, scores) = evaluate(backend, final)
    bundle, plots = finish_run(
        folder, name, spec, backend, layout, stats, history, final, (y, w, scores), metrics, emit
    )
    return TrainResult(folder, bundle, metrics, history, plots, (y, w, scores))


def _small_split_note(batch_size: int, train_events: list[int]) -> str:
    return (
        f"batch size {batch_size}: the training split has {sum(train_events):,} events, "
        f"and an epoch takes at least {AUTO_MIN_STEPS} optimiser steps unless "
        "training.batch_size is given"
    )


def _loader(spec: TrainSpec) -> str:
    """Reading in a child process keeps a Python training loop from sharing the GIL with
    uproot and awkward; the BDT reads everything at once and needs no such help."""
    if spec.training.loader != "auto":
        return spec.training.loader
    many_cores = (os.cpu_count() or 1) > 1
    return "process" if many_cores and spec.model.resolved_backend != "sklearn" else "thread"
