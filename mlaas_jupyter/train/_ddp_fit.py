"""The training of one data-parallel rank: its shard, the epoch loop, the results.

Every rank runs :func:`run_rank` with the same spec and statistics, in a process group
(:mod:`._ddp_rank`). What differs from one process (:mod:`._epochs`):

* **shards**: each rank reads its entry range of every file (``BatchStream(shard=
  (rank, world))``); an event's split is a hash of (file, entry), so the ranks'
  training events together are the single process's.
* **global batch**: ``training.batch_size`` is the batch of one optimiser step over all
  ranks (``batch_size / world`` each): as many steps per epoch as in one process.
* **uneven shards**: a rank whose shard has run out takes part in the remaining steps
  with a batch of weight zero (a zero gradient; DDP averages) until no rank has data.
  Unlike ``torch.distributed.algorithms.join.Join``, every rank makes every optimiser
  step: their optimiser states (Adam's moments) stay identical, and rank 0's
  checkpoint is every rank's. In the first epoch the ranks all-reduce a "has data"
  flag each step; a shard has the same batches every epoch (unless classes are
  balanced by sampling), so later epochs make the largest shard's count of steps
  without it.
* **metrics**: validation and test are scored shard by shard, the (label, weight,
  score) arrays gathered to rank 0, which computes the split's metrics; the epoch's
  record is broadcast, so every rank stops early alike.
* **files**: checkpoints, ``progress.json``, plots and the bundle are written by rank
  0; a checkpoint read back is read by rank 0 and broadcast.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ..errors import TrainingError
from ..specs.training import TrainSpec
from ..stream.batches import BatchStream
from ..stream.plan import SPLITS
from ..stream.stats import DatasetStats
from ._ddp_steps import Group, restore, train_epoch
from ._epochs import EventSink, _Progress
from ._results import finish_run
from .backend import ModelContext, make_backend
from .metrics import evaluate_scores
from .torch_backend import TorchBackend

__all__ = ["rank_streams", "run_rank"]


def rank_streams(
    spec: TrainSpec, stats: DatasetStats, rank: int, world: int, loader: str = "thread"
) -> dict[str, BatchStream]:
    """The streams of rank ``rank`` of ``world``: its shard of each split that has events."""
    config, dataset = spec.training, spec.dataset
    batch = config.batch_for(sum(stats.split_events("train")))
    return {
        split: BatchStream(
            dataset,
            split,
            max(1, batch // world) if split == "train" else batch,
            stats=stats,
            loader=loader if split == "train" else "thread",
            epoch_cache_mb=config.epoch_cache_mb if split != "test" else 0,
            shard=(rank, world),
        )
        for split in SPLITS
        if sum(stats.split_events(split)) > 0
    }


def _fit(
    backend: Any,
    model: Any,
    streams: dict[str, BatchStream],
    spec: TrainSpec,
    checkpoints: Path,
    emit: EventSink,
    group: Group,
) -> list[dict[str, Any]]:
    """The epoch loop of :func:`._epochs._fit`, over the ranks."""
    config, dataset = spec.training, spec.dataset
    train_stream, validation = streams["train"], streams.get("validation")
    progress_file = checkpoints / "progress.json"
    state = None
    if group.rank == 0 and config.resume and progress_file.exists():
        state = json.loads(progress_file.read_text())
    state = group.broadcast(state)
    history: list[dict[str, Any]] = []
    best, best_epoch, start = float("inf"), 0, 0
    if state is not None:
        restore(backend, checkpoints / "last", group)
        history, best, best_epoch, start = (
            state["history"], state["best"], state["best_epoch"], state["epoch"]
        )  # fmt: skip
        if state.get("stopped_early"):
            message = f"the checkpointed run stopped early at epoch {start} (best epoch "
            emit({"type": "note", "message": message + f"{best_epoch}): nothing left to train"})
            start = config.epochs
        else:
            emit({"type": "note", "message": f"resumed from the checkpoint of epoch {start}"})
            train_stream.warm_cache()
    if group.rank == 0:
        checkpoints.mkdir(parents=True, exist_ok=True)
    world = group.world
    # a shard's batches are the same every epoch, unless classes are balanced by sampling
    sampled = dataset.balance == "sample" and dataset.task != "regression"
    steps: int | None = None

    def progress(event: dict[str, Any]) -> None:  # rank 0's shard stands for all
        emit({**event, "events": event["events"] * world,
              "events_per_s": round(event["events_per_s"] * world, 1)})  # fmt: skip

    for epoch in range(start, config.epochs):
        started = time.perf_counter()
        train_stream.epoch = epoch
        if group.rank == 0:
            train_stream.on_batch = _Progress(progress, epoch + 1, len(train_stream))
        loss, events, batches = train_epoch(backend, model, train_stream, group, steps)
        if steps is None and not sampled:  # the next epochs have the same batches
            steps = int(group.largest(batches))
        train_stream.on_batch = None
        seconds = time.perf_counter() - started
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "epochs": config.epochs,
            "loss": float(loss),
            "events": events,
            "events_per_s": round(events / seconds, 1) if seconds else None,
            "seconds": round(seconds, 3),
        }
        scored = group.scores(backend, validation)
        if scored is not None:
            y, w, scores = scored
            metrics = evaluate_scores(dataset.task, y, scores, w, labels=dataset.labels)
            record.update({f"val_{k}": v for k, v in metrics.items() if k != "events"})
        record = group.broadcast(record)
        history.append(record)
        monitored = record.get("val_loss", loss)
        improved = monitored < best - config.min_delta
        if improved:
            best, best_epoch = monitored, epoch + 1
        stop = config.early_stopping is not None and epoch + 1 - best_epoch >= config.early_stopping
        if group.rank == 0:
            if improved:
                backend.save_checkpoint(checkpoints / "best")
            backend.save_checkpoint(checkpoints / "last")
            saved = {"epoch": epoch + 1, "history": history, "best": best,
                     "best_epoch": best_epoch, "stopped_early": stop}  # fmt: skip
            partial = progress_file.with_name(progress_file.name + ".partial")
            partial.write_text(json.dumps(saved))
            os.replace(partial, progress_file)
        emit({"type": "epoch", **record})
        if stop:
            emit({"type": "early_stop", "epoch": epoch + 1, "best_epoch": best_epoch})
            break
    if best_epoch and best_epoch != len(history):
        restore(backend, checkpoints / "best", group)
    return history


def run_rank(
    arguments: dict[str, Any], device: str, backend_name: str, send: EventSink
) -> dict[str, Any]:
    """Train as rank ``arguments["rank"]``; rank 0 returns what the job's
    :class:`~.runner.TrainResult` holds (the others an empty dict)."""
    spec: TrainSpec = pickle.loads(arguments["spec"])
    stats: DatasetStats = arguments["stats"]
    rank, world = arguments["rank"], arguments["world"]
    group = Group(rank, world, device)
    emit: EventSink = send if rank == 0 else _ignore
    config, dataset = spec.training, spec.dataset
    streams = rank_streams(spec, stats, rank, world, arguments["loader"])
    layout = streams["train"].layout
    n_classes = len(dataset.labels) if dataset.task == "multiclass" else 1
    context = ModelContext(layout, dataset.task, n_classes, dataset.seed, stats.target_scale())
    on_cpu = config.model_copy(update={"device": "cpu" if device == "cpu" else "cuda"})
    backend = make_backend(spec.model, context, on_cpu)
    if not isinstance(backend, TorchBackend):
        raise TrainingError(f"data-parallel training needs a torch model, not {backend.kind}")
    torch.set_num_threads(arguments["threads"])  # the backend sets its own count
    if backend.device != device:  # the backend takes the first GPU: this rank has its own
        backend.module.to(device)
        backend.device = device
    model = DistributedDataParallel(
        backend.module,
        device_ids=[torch.device(device).index] if device != "cpu" else None,
        gradient_as_bucket_view=True,  # the gradients live in the all-reduce buckets: no copy
    )
    emit({"type": "model", "backend": backend.kind, "device": device, "idim": layout.width,
          "workers": world, "process_group": backend_name})  # fmt: skip
    folder = Path(arguments["run_dir"])
    try:
        history = _fit(backend, model, streams, spec, folder / "checkpoint", emit, group)
    finally:
        streams["train"].close()
    for note in getattr(backend, "notes", []):
        emit({"type": "note", "message": note})
    final = streams.get("test") or streams.get("validation") or streams["train"]
    scored = group.scores(backend, final)
    if scored is None:  # rank 0 writes the results
        return {}
    y, w, scores = scored
    metrics = evaluate_scores(dataset.task, y, scores, w, labels=dataset.labels)
    bundle, plots = finish_run(
        folder, arguments["name"], spec, backend, layout, stats, history, final, scored,
        metrics, emit,
    )  # fmt: skip
    return {"bundle": str(bundle), "metrics": metrics, "history": history,
            "plots": [str(p) for p in plots]}  # fmt: skip


def _ignore(event: dict[str, Any]) -> None:
    """The events of ranks other than 0: rank 0 speaks for all."""
