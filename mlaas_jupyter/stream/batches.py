"""`BatchStream`: fixed-size float32 batches from any number of files, in bounded memory.

Pipeline of one epoch, in three threads::

    reader:     files (interleaved, weighted by remaining entries) -> chunks (uproot)
    converter:  cuts, split, class balance -> one (n, width) float32 block per chunk
                -> shuffle buffer -> shuffled pools of whole batches
    caller:     pools sliced into batches (views, no copy)

Memory is bounded by the chunk being read, one block, the shuffle buffer and one
queued pool, whatever the number or size of files (plus, when asked, an epoch cache
of bounded size: see :mod:`._epoch_cache`). Everything is deterministic for a given
seed and epoch. With ``loader="process"`` the reader and converter run, one after
the other, in a child process (:mod:`._process`).
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, SpecError
from ..specs.dataset import DatasetSpec
from ._balance import balance_report, class_balance
from ._epoch_cache import EpochCache
from ._interleave import FileInterleaver
from ._pipeline import ROUND_END, Batch, background, concat
from ._process import ProcessPools
from ._skipped import skipped_files
from .layout import FeatureLayout
from .plan import SPLITS, DatasetPlan
from .stats import DatasetStats, compute_stats, plan_for

__all__ = ["Batch", "BatchStream", "EpochReport"]


@dataclass
class EpochReport:
    """What the last epoch read and produced (for throughput and progress)."""

    entries_read: int = 0
    events: int = 0
    batches: int = 0
    seconds: float = 0.0
    class_events: dict[int, int] = field(default_factory=dict)
    #: the sum of the (balanced) weights of each class's events
    class_weights: dict[int, float] = field(default_factory=dict)


_BLOCK_BYTES = 16 << 20


class BatchStream:
    """Iterate over batches of one split of a dataset; each ``iter()`` is one epoch.

    Parameters
    ----------
    spec
        A :class:`DatasetSpec` or the path of a YAML/JSON spec.
    split
        ``"train"``, ``"validation"`` or ``"test"``.
    batch_size
        Events per batch (the last batch of an epoch may be smaller unless ``drop_last``).
    shuffle
        Mix events across files and classes with a shuffle buffer; default: only for
        ``"train"``.
    stats
        Precomputed statistics; computed (or read from ``cache``) when ``None``.
    prefetch
        Shuffled pools prepared ahead by background threads (reading runs one chunk
        ahead in a thread of its own); 0 does everything in the caller's thread.
    limit
        Stop each epoch after this many (shuffled) events.
    loader
        ``"thread"`` reads in background threads; ``"process"`` reads in a child
        process with a GIL of its own, so reading and a Python training loop truly run
        in parallel (it starts once, in about a second, and serves every epoch).
    epoch_cache_mb
        Keep the split's converted events in memory after the first full epoch when
        they take at most this many MB (and at most an eighth of the memory the process
        may use: a container's limit counts); later epochs shuffle them there instead of
        reading the files again. 0 (the default) reads the files every epoch. Not
        used when classes are balanced by sampling (each epoch samples anew).
    shard
        ``(rank, world)``: this stream reads only the ``rank``-th of ``world`` entry
        ranges of every file (data-parallel training: each rank one shard). The shards
        of one split hold its events once each; ``events`` and ``len()`` are then
        estimates (a ``world``-th of the split).
    """

    def __init__(
        self,
        spec: DatasetSpec | str | Path,
        split: str = "train",
        batch_size: int = 1024,
        *,
        shuffle: bool | None = None,
        stats: DatasetStats | None = None,
        cache: Any = True,
        drop_last: bool = False,
        prefetch: int = 1,
        limit: int | None = None,
        max_open_files: int = 8,
        workers: int = 1,
        loader: str = "thread",
        epoch_cache_mb: float = 0,
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.spec = spec if isinstance(spec, DatasetSpec) else DatasetSpec.from_file(spec)
        if split not in SPLITS:
            raise SpecError("split", f"got {split!r}; allowed values are {', '.join(SPLITS)}")
        if batch_size < 1:
            raise SpecError("batch_size", f"must be >= 1, got {batch_size}")
        if loader not in ("thread", "process"):
            raise SpecError("loader", f"got {loader!r}; allowed values are process, thread")
        if shard is not None and not (len(shard) == 2 and 0 <= shard[0] < shard[1]):
            raise SpecError("shard", f"expected (rank, world) with 0 <= rank < world, got {shard}")
        self.loader = loader
        self.shard = None if shard is None else (int(shard[0]), int(shard[1]))
        self._process: ProcessPools | None = None
        self.split = split
        self.batch_size = batch_size
        self.shuffle = split == "train" if shuffle is None else shuffle
        self.drop_last = drop_last
        self.prefetch = prefetch
        self.limit = limit
        self.max_open_files = max(1, max_open_files)
        self.plan: DatasetPlan = plan_for(self.spec)
        self.stats = (
            stats if stats is not None else compute_stats(self.spec, cache=cache, workers=workers)
        )
        self.layout = FeatureLayout.build(self.spec, self.plan.feature_kinds, self.stats)
        self.epoch = 0
        self.report = EpochReport()
        #: called with the running :class:`EpochReport` after every batch (progress bars)
        self.on_batch: Callable[[EpochReport], None] | None = None
        self.class_factor, self._keep = self._balance()
        # the padded matrix is wider than the data read: cap a block's rows by its
        # output size, so memory does not grow with file size or count
        self._block_rows = max(batch_size, _BLOCK_BYTES // (4 * max(1, self.layout.width)))
        self._files = FileInterleaver(
            self.plan,
            seed=self.spec.seed,
            shuffle=self.shuffle,
            step_size=self.spec.step_size,
            max_open_files=self.max_open_files,
            block_rows=self._block_rows,
            shard=self.shard,
            skip=frozenset(skipped_files(self.stats)),
        )
        sampling = self._keep != [1.0] * len(self._keep)
        self.epoch_cache_mb = epoch_cache_mb
        self._cache = EpochCache(0 if sampling else int(epoch_cache_mb * (1 << 20)))

    # -- sizes -------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.layout.width

    @property
    def events(self) -> int:
        """Events per epoch (expected value when classes are balanced by sampling)."""
        per_class = self.stats.split_events(self.split)
        expected = sum(k * p for k, p in zip(per_class, self._keep, strict=False))
        total = round(expected) if self.spec.task != "regression" else sum(per_class)
        if self.shard is not None:
            total = math.ceil(total / self.shard[1])
        return min(total, self.limit) if self.limit is not None else total

    def __len__(self) -> int:
        n = self.events / self.batch_size
        return int(n) if self.drop_last else math.ceil(n)

    def _balance(self) -> tuple[np.ndarray[Any, Any], list[float]]:
        balance = class_balance(self.spec, self.stats, self.split)  # see ._balance
        if balance.problem is not None:
            raise DataError(balance.problem)
        return np.array(balance.factor, dtype=np.float32), list(balance.keep)

    def balance_report(self) -> dict[str, Any] | None:
        """What class balancing does to this split: per class, events and sums of weights
        before and after (see :func:`._balance.balance_report`)."""
        return balance_report(self.spec, self.stats, self.split)

    # -- iteration -------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        epoch = self.epoch
        self.epoch += 1
        return self._batches(epoch)

    def _blocks(self, epoch: int) -> Generator[Any, None, None]:
        """Chunks turned into contiguous float32 blocks of the split's events (not yet
        shuffled); reading runs one chunk ahead in its own thread."""
        rng = np.random.default_rng([self.spec.seed, epoch, 3])
        code = SPLITS.index(self.split)
        sampling = self._keep != [1.0] * len(self._keep)
        chunks = self._files.chunks
        for item in background(lambda: chunks(epoch), 1 if self.prefetch > 0 else 0):
            if item is ROUND_END:
                yield item
                continue
            file, chunk = item
            self.report.entries_read += chunk.entries
            block = self.plan.select(chunk, file)
            chosen = block.split == code
            labels = block.labels[chosen]
            if sampling:
                chosen[chosen] = rng.random(len(labels)) < np.asarray(self._keep)[labels]
                labels = block.labels[chosen]
            rows = block.rows[chosen]
            weights = block.weights[chosen]
            if self.spec.task != "regression":
                weights = weights * self.class_factor[labels]
            x = self.layout.fill(block.flat, block.jagged, rows) if len(rows) else None
            del item, chunk, block  # the raw columns are not needed any more
            if x is not None:
                yield Batch(x, labels, weights)
                del x

    def _pools(self, epoch: int) -> Generator[Batch, None, None]:
        """The shuffle buffer: blocks in, shuffled pools of whole batches out.

        Once the buffer holds ``shuffle_buffer`` events, everything beyond half of it
        goes out; before that, half of what it holds, so the first batch does not
        wait for a full buffer. Without shuffling, blocks are only cut into batches.
        """
        rng = np.random.default_rng([self.spec.seed, epoch, 2])
        capacity = max(self.spec.shuffle_buffer, self.batch_size)
        size = self.batch_size
        if self._cache.ready:
            pool_size = max(size, capacity // 2 // size * size)
            shuffle = rng if self.shuffle else None
            yield from self._cache.pools(shuffle, pool_size, size, self.drop_last)
            return
        held: list[Batch] = []
        waiting = self.shuffle  # until every file of the first round is in the buffer
        for block in self._cache.collect(self._blocks(epoch)):
            if block is ROUND_END:
                waiting = False
            else:
                held.append(block)
            if waiting or not held:
                continue
            buffered = sum(len(b.y) for b in held)
            if not self.shuffle:
                ready = buffered - buffered % size
            elif buffered >= capacity:
                ready = (buffered - capacity // 2) // size * size
            else:
                ready = buffered // 2 // size * size
            if ready == 0:
                continue
            pool = concat(held, rng if self.shuffle else None)
            yield Batch(pool.x[:ready], pool.y[:ready], pool.w[:ready])
            # a copy of the (small) rest: a view would keep the whole pool alive
            held = [Batch(pool.x[ready:].copy(), pool.y[ready:].copy(), pool.w[ready:].copy())]
        if held and sum(len(b.y) for b in held):
            pool = concat(held, rng if self.shuffle else None)
            end = len(pool.y) - (len(pool.y) % size if self.drop_last else 0)
            if end:
                yield Batch(pool.x[:end], pool.y[:end], pool.w[:end])

    def _batches(self, epoch: int) -> Iterator[Batch]:
        self.report = EpochReport()
        started = time.perf_counter()
        left = self.limit
        if self.loader == "process":
            pools = self._child().pools(epoch)
        else:
            pools = background(lambda: self._pools(epoch), self.prefetch)
        for pool in pools:
            # the limit applies after shuffling, so a limited epoch still mixes classes
            end = len(pool.y) if left is None else min(len(pool.y), left)
            yield from self._emit(pool, 0, end, started)
            if left is not None:
                left -= end
                if left <= 0:
                    break
        if self._process is not None:
            self.report.entries_read = self._process.entries_read

    def _child(self) -> ProcessPools:
        if self._process is None:
            self._process = ProcessPools(
                {
                    "spec": self.spec,
                    "split": self.split,
                    "batch_size": self.batch_size,
                    "shuffle": self.shuffle,
                    "stats": self.stats,
                    "drop_last": self.drop_last,
                    "max_open_files": self.max_open_files,
                    "epoch_cache_mb": self.epoch_cache_mb,
                    "shard": self.shard,
                }
            )
            weakref.finalize(self, self._process.close)
        return self._process

    def warm_cache(self) -> None:
        """Fill the epoch cache now (when it is on) by reading epoch 0 in full.

        The cache holds its events in the order epoch 0 read them, and cached epochs
        shuffle that order: a run resumed at a later epoch warms the cache first, so
        its epochs are the same as those of a run that never stopped.
        """
        if self._cache.budget <= 0 or self._cache.ready:
            return
        saved = self.epoch, self.report, self.on_batch
        self.on_batch = None
        try:
            for _ in self._batches(0):
                pass
        finally:
            self.epoch, self.report, self.on_batch = saved

    def close(self) -> None:
        """Stop the loader process, if any (also done when the stream is collected)."""
        if self._process is not None:
            self._process.close()
            self._process = None

    def _emit(self, pool: Batch, start: int, stop: int, started: float) -> Iterator[Batch]:
        for i in range(start, stop, self.batch_size):
            j = min(i + self.batch_size, stop)
            batch = Batch(pool.x[i:j], pool.y[i:j], pool.w[i:j])
            report = self.report
            report.events += j - i
            report.batches += 1
            if self.spec.task != "regression":
                summed = np.bincount(batch.y, weights=batch.w).tolist()
                for label, count in enumerate(np.bincount(batch.y).tolist()):
                    if count:
                        report.class_events[label] = report.class_events.get(label, 0) + count
                        weight = report.class_weights.get(label, 0.0) + summed[label]
                        report.class_weights[label] = weight
            report.seconds = time.perf_counter() - started
            if self.on_batch is not None:
                self.on_batch(report)
            yield batch
