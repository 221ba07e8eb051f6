"""One data-parallel step at a time: the collectives of the ranks and one epoch.

:class:`Group` is a rank's place in the process group with the collectives the epoch
loop of :mod:`._ddp_fit` uses; :func:`train_epoch` trains one epoch of a shard with
``DistributedDataParallel``, every rank making the same optimiser steps (uneven shards:
see :mod:`._ddp_fit`); :func:`restore` gives rank 0's checkpoint to every rank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..errors import TrainingError
from ..stream.batches import BatchStream
from ._results import collect_scores
from .torch_backend import NAN_HINT

__all__ = ["Group", "restore", "train_epoch"]


class Group:
    """This rank's place in the process group, and the collectives the loop uses."""

    def __init__(self, rank: int, world: int, device: str) -> None:
        self.rank, self.world, self.device = rank, world, torch.device(device)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def largest(self, value: int) -> int:
        """The largest ``value`` of the ranks."""
        tensor = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def sums(self, *values: float) -> list[float]:
        """``values`` summed over the ranks."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return [float(v) for v in tensor.cpu()]

    def scores(
        self, backend: Any, stream: BatchStream | None
    ) -> tuple[np.ndarray[Any, Any], ...] | None:
        """(labels, weights, scores) of the whole split on rank 0 (None elsewhere)."""
        if stream is None:
            return None
        mine = collect_scores(backend.predict, stream)
        parts: list[Any] | None = [None] * self.world if self.rank == 0 else None
        dist.gather_object(mine, parts, dst=0)
        if parts is None:
            return None
        filled = [p for p in parts if len(p[0])] or parts[:1]
        return tuple(np.concatenate([p[k] for p in filled]) for k in range(3))


def train_epoch(
    backend: Any, model: Any, stream: BatchStream, group: Group, steps: int | None
) -> tuple[float, int, int]:
    """One epoch of this rank's shard: ``steps`` optimiser steps, or (None) as many as
    the largest shard has batches, which costs an all-reduce of a flag per step. The
    loss and the events over all ranks, and this shard's batches."""
    model.train()
    spare: tuple[Any, ...] | None = None
    total = torch.zeros(2, dtype=torch.float64, device=group.device)  # loss x weight, weight
    events, number, mine = 0, 0, 0
    flag = torch.zeros(1, device=group.device)
    batches = iter(backend._tensors(stream))
    while steps is None or number < steps:
        batch = next(batches, None)
        if steps is None:
            flag.fill_(0.0 if batch is None else 1.0)
            dist.all_reduce(flag)  # the steps go on while any rank has data
            if float(flag) == 0.0:
                break
        number += 1
        if batch is None:  # this shard has run out: a step of weight zero
            x, y, w = spare if spare is not None else _empty(backend)
            w = torch.zeros_like(w)
        else:
            x, y, w = spare = batch
            events, mine = events + len(w), mine + 1
        per_event = backend._loss(model(x), y)
        wsum = w.sum()
        loss = (per_event * w).sum() / wsum.clamp(min=1e-12)
        if not bool(torch.isfinite(loss)):
            what = "NaN" if bool(torch.isnan(loss)) else "infinite"
            raise TrainingError(
                f"training loss became {what} at epoch {stream.epoch}, step {number} "
                f"of rank {group.rank}; {NAN_HINT}"
            )
        backend.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        backend.optimizer.step()
        total[0] += loss.detach() * wsum.detach()
        total[1] += wsum.detach()
    if steps is not None and next(batches, None) is not None:
        raise TrainingError(f"rank {group.rank}'s shard has more batches than in its first epoch")
    summed, weight, all_events = group.sums(float(total[0]), float(total[1]), events)
    mean = backend.physical_loss(summed / weight) if weight else float("nan")
    return mean, int(all_events), mine


def _empty(backend: Any) -> tuple[Any, ...]:
    """Two rows of zeros (a batch norm needs more than one): a shard with no events."""
    device = backend.device
    dtype = torch.long if backend.task == "multiclass" else torch.float32
    x = torch.zeros((2, backend.context.idim), device=device)
    return x, torch.zeros(2, dtype=dtype, device=device), torch.zeros(2, device=device)


def restore(backend: Any, path: Path, group: Group) -> None:
    """Load a checkpoint on rank 0 and give it to every rank."""
    state = torch.load(path, map_location="cpu", weights_only=True) if group.rank == 0 else None
    state = group.broadcast(state)
    backend.module.load_state_dict(state["model"])
    backend.optimizer.load_state_dict(state["optimizer"])
