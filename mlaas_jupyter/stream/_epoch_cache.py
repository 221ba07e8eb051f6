"""A split's events kept in memory after one full epoch, when they fit a budget.

Reading ROOT files costs decompression and conversion every epoch; for a split that
fits in memory, later epochs can shuffle the converted events instead. Besides the
CPU time, this keeps the loader from evicting the training loop's data from the
caches shared between cores, which on a small machine slows training more than the
loader's own CPU time does.

The cache fills only from an epoch read to its end (an epoch left early, or one
that outgrows the budget, leaves it empty for good), so a cached epoch always holds
exactly the events a read epoch would: same cuts, split and weights. Only their
order differs: cached epochs are shuffled as a whole instead of through the
shuffle buffer, still deterministic for a given seed and epoch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ._pipeline import ROUND_END, Batch, concat, take_rows

__all__ = ["EpochCache", "memory_limit"]

#: the cache takes at most this share of the memory the process may use
MEMORY_SHARE = 8


def memory_limit() -> int:
    """Bytes of memory this process may use: the container's limit (cgroup v2 or v1,
    as on Binder) when there is one, else the machine's physical memory."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            limits.append(int(Path(path).read_text().strip()))  # "max": no limit
    return min(limits)


class EpochCache:
    """Up to ``budget`` bytes of converted blocks, one complete epoch of them; never more
    than an eighth of :func:`memory_limit`, so a default budget cannot exhaust a small
    container."""

    def __init__(self, budget: int) -> None:
        self.budget = min(budget, memory_limit() // MEMORY_SHARE) if budget > 0 else 0
        self.events: Batch | None = None

    @property
    def ready(self) -> bool:
        return self.events is not None

    @property
    def nbytes(self) -> int:
        return 0 if self.events is None else sum(a.nbytes for a in self.events)

    def collect(self, blocks: Iterator[Any]) -> Generator[Any, None, None]:
        """Pass ``blocks`` through, keeping them; complete, they become the cache."""
        if self.budget <= 0 or self.ready:
            yield from blocks
            return
        kept: list[Batch] = []
        size = 0
        for block in blocks:
            if block is not ROUND_END and self.budget > 0:
                size += sum(a.nbytes for a in block)
                if size > self.budget:
                    kept, self.budget = [], 0  # too big: never tried again
                else:
                    kept.append(block)
            yield block
        if self.budget > 0 and kept:
            self.events = concat(kept, None) if len(kept) > 1 else kept[0]

    def pools(
        self, rng: np.random.Generator | None, pool_size: int, batch_size: int, drop_last: bool
    ) -> Iterator[Batch]:
        """The cached events in pools of ``pool_size``, in an order drawn from ``rng``."""
        assert self.events is not None
        x, y, w = self.events
        total = len(y)
        end = total - (total % batch_size if drop_last else 0)
        order = rng.permutation(total) if rng is not None else None
        for start in range(0, end, pool_size):
            stop = min(start + pool_size, end)
            if order is None:
                yield Batch(x[start:stop], y[start:stop], w[start:stop])
            else:
                rows = order[start:stop]
                yield Batch(take_rows(x, rows), y[rows], w[rows])
