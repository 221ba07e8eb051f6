"""Reading a dataset's files for one epoch: chunks of several files, interleaved.

Separate from :mod:`.batches` (which turns chunks into batches) so the reading order,
the part that decides what mixes with what, reads as one piece.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import numpy as np

from ._pipeline import ROUND_END
from .plan import DatasetPlan, FileEntry
from .sources import RNTupleSource, RootTreeSource, open_tree

__all__ = ["FileInterleaver"]


class FileInterleaver:
    """The chunks of ``plan``'s files, epoch by epoch (see :meth:`chunks`).

    Parameters
    ----------
    plan
        The dataset's files, tree and columns to read.
    seed, shuffle
        Reading order: files and chunks interleaved at random (deterministic for a
        seed and epoch), or one file after the other.
    step_size
        Entries (int) or bytes (``"32 MB"``) per chunk, capped at ``block_rows``.
    max_open_files
        Files read from at once when shuffling.
    block_rows
        Rows of the largest block the caller builds from one chunk.
    shard
        ``(rank, world)``: read only the ``rank``-th of ``world`` entry ranges of every
        file (cut near basket boundaries), so ``world`` readers together read each event
        once; the events of a range, their split and their epoch-by-epoch reading order
        come from the same (seed, epoch) draws as without a shard.
    """

    def __init__(
        self,
        plan: DatasetPlan,
        *,
        seed: int,
        shuffle: bool,
        step_size: int | str,
        max_open_files: int,
        block_rows: int,
        shard: tuple[int, int] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        self.plan, self.seed, self.shuffle = plan, seed, shuffle
        #: files the statistics pass skipped (the dataset's ``on_error: skip``)
        self.skip = skip
        self.step_size, self.max_open_files, self.block_rows = step_size, max_open_files, block_rows
        self.shard = shard
        self._per_step: dict[str, int] = {}
        self._ranges: dict[str, tuple[int, int]] = {}

    def chunks(self, epoch: int) -> Generator[Any, None, None]:
        """``(file, chunk)`` pairs, files interleaved; ``ROUND_END`` after the first round.

        With shuffling, files come in an order that alternates classes, up to
        ``max_open_files`` are open at once, and each next chunk comes from a file
        drawn with probability proportional to its remaining entries. The first round
        takes a slice (ending on a basket boundary) of as many files as fit in about
        one block, and of at least one file per class: the first batches mix classes
        without reading, or holding, more than about one block.
        """
        rng = np.random.default_rng([self.seed, epoch, 1])
        pending = self._file_order(rng)
        classes = len({f.class_index for f in pending})
        planned = min(self.max_open_files, len(pending)) if self.shuffle else 1
        # (file, source, its chunks, entries left, entries of its range)
        active: list[tuple[FileEntry, Any, Iterator[Any], int, int]] = []
        first_round, taken = True, 0
        seen: set[int] = set()
        try:
            while active or pending:
                while pending and len(active) < (self.max_open_files if self.shuffle else 1):
                    if first_round and active and self.shuffle:
                        budget = self.block_rows
                        enough = taken >= budget or taken + taken // len(active) > budget
                        if enough and len(seen) >= classes:
                            break  # the rest open after the first round
                    file = pending.pop(0)
                    source = open_tree(file.path, self.plan.tree)
                    low, high = self._range(source)
                    step = self._step(source)
                    first = step
                    if first_round and planned > 1:
                        share = max(1, min(step, high - low) // planned)
                        align = getattr(source, "aligned_entry", None)
                        end = align(low + share) if align is not None else low + share
                        first = min(end - low, step)
                    taken += min(first, high - low)
                    seen.add(file.class_index)
                    iterator = self._file_chunks(source, low, high, first, step)
                    active.append((file, source, iterator, high - low, high - low))
                unstarted = [i for i, a in enumerate(active) if a[3] == a[4]]
                if first_round and not unstarted:
                    first_round = False
                    yield ROUND_END
                if self.shuffle and unstarted:
                    index = unstarted[0]
                elif self.shuffle and len(active) > 1:
                    remaining = np.array([max(a[3], 1) for a in active], dtype=np.float64)
                    index = int(rng.choice(len(active), p=remaining / remaining.sum()))
                else:
                    index = 0
                file, source, iterator, left, size = active[index]
                chunk = next(iterator, None)
                if chunk is None:
                    source.close()
                    active.pop(index)
                    continue
                active[index] = (file, source, iterator, left - chunk.entries, size)
                yield file, chunk
                del chunk  # not kept alive while the next one is read
        finally:
            for _, source, *_ in active:
                source.close()

    def _file_order(self, rng: np.random.Generator) -> list[FileEntry]:
        """Files in reading order: shuffled within each class, classes alternating."""
        files = [f for f in self.plan.files if f.path not in self.skip]
        if not self.shuffle:
            return files
        groups: dict[int, list[FileEntry]] = {}
        for i in rng.permutation(len(files)):
            groups.setdefault(files[i].class_index, []).append(files[i])
        order: list[FileEntry] = []
        while any(groups.values()):
            for members in groups.values():
                if members:
                    order.append(members.pop(0))
        return order

    def _step(self, source: Any) -> int:
        # sizing a step in bytes reads every basket's header (milliseconds per file):
        # once per file, not once per epoch
        per_step = self._per_step.get(source.path)
        if per_step is None:
            per_step = int(source.entries_per_step(self.step_size, self.plan.read_columns))
            self._per_step[source.path] = per_step
        return min(per_step, self.block_rows)

    def _range(self, source: Any) -> tuple[int, int]:
        """The entries ``[low, high)`` of ``source`` this reader reads: all of them, or
        its shard's range. A cut moves to the next entry where every basket (cluster)
        starts when that is near (no basket then read by two shards); with large
        baskets it stays where it is, so the shards stay even."""
        if self.shard is None:
            return 0, int(source.entries)
        cached = self._ranges.get(source.path)
        if cached is None:
            rank, world = self.shard
            entries = int(source.entries)
            align = getattr(source, "aligned_entry", None)

            def cut(k: int) -> int:
                at = entries * k // world
                if align is None or k in (0, world):
                    return at
                aligned = min(int(align(at)), entries)
                return aligned if aligned - at <= entries // (8 * world) else at

            cached = self._ranges[source.path] = (cut(rank), cut(rank + 1))
        return cached

    def _file_chunks(
        self, source: Any, low: int, high: int, first: int, step: int
    ) -> Iterator[Any]:
        """Chunks of entries ``low:high`` of one file: ``first`` entries, then ``step``
        entries at a time."""
        columns = self.plan.read_columns
        # ROOT files: chunks end on basket (cluster) boundaries, none decompressed twice
        options = {"align": True} if isinstance(source, RootTreeSource | RNTupleSource) else {}
        if first < min(step, high - low):
            yield from source.iterate(columns, first, low, low + first)
            yield from source.iterate(columns, step, low + first, high, **options)
        else:
            yield from source.iterate(columns, step, low, high, **options)
