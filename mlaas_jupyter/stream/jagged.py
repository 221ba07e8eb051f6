"""Vectorised handling of jagged (variable-length) branches.

An awkward ``var * T`` array is taken apart once into NumPy ``starts``, ``counts``
and a flat ``content`` (:class:`JaggedParts`); padding, clipping, sorting and
masking then work on those with a handful of whole-array NumPy calls, about 20x
faster than ``ak.pad_none`` + ``ak.fill_none`` + ``ak.to_numpy``.

:class:`ScatterPlan` is what the batch stream uses (tiled, writing straight into the
training matrix); :class:`PadPlan` and :func:`pad_clip` pad one branch on its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from ..errors import DataError

__all__ = [
    "JaggedParts",
    "PadPlan",
    "ScatterPlan",
    "apply_order",
    "jagged_parts",
    "pad_clip",
    "sort_order",
]

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float32]]


@dataclass
class JaggedParts:
    """One list per event: event ``i`` holds ``content[starts[i]:starts[i] + counts[i]]``."""

    starts: IntArray
    counts: IntArray
    content: np.ndarray[Any, Any]

    def __len__(self) -> int:
        return len(self.counts)

    def take_content(self, rows: IntArray) -> np.ndarray[Any, Any]:
        """The values of the lists of ``rows``, concatenated (for statistics)."""
        every = len(rows) == len(self.counts) and len(rows) > 0
        every = every and rows[0] == 0 and bool((np.diff(rows) == 1).all())
        if every and self.contiguous:
            first = int(self.starts[0])
            return self.content[first : first + int(self.counts.sum())]
        counts = self.counts[rows]
        total = int(counts.sum())
        if total == 0:
            return self.content[:0]
        # index of each value: its list's start plus its position inside the list
        offsets = np.repeat(self.starts[rows] - np.cumsum(counts) + counts, counts)
        return self.content[offsets + np.arange(total)]

    def compact(self) -> JaggedParts:
        """The same lists with their values stored back to back from position 0."""
        rows = np.arange(len(self.counts))
        starts = (np.cumsum(self.counts) - self.counts).astype(np.int64)
        return JaggedParts(starts, self.counts, self.take_content(rows))

    @property
    def contiguous(self) -> bool:
        return bool(
            len(self.counts) == 0
            or np.array_equal(self.starts[1:], (self.starts + self.counts)[:-1])
        )


def jagged_parts(array: ak.Array, name: str, fill: float = 0.0) -> JaggedParts:
    """Take a ``var * T`` awkward array apart into NumPy buffers without copying values."""
    if array.ndim != 2:
        raise DataError(
            f"branch {name!r} has type {array.type}: only one level of nesting is supported"
        )
    layout = ak.to_layout(array)
    if layout.is_option:
        array = ak.fill_none(array, [], axis=0)  # missing lists become empty
        layout = ak.to_layout(array)
    if layout.is_list:
        content_layout = layout.content
        if content_layout.is_option:
            array = ak.fill_none(array, np.float32(fill), axis=1)
            layout = ak.to_layout(array)
            content_layout = layout.content
        if layout.is_regular:
            layout = layout.to_ListOffsetArray64(False)
            content_layout = layout.content
        if hasattr(layout, "offsets"):
            offsets = np.asarray(layout.offsets, dtype=np.int64)
            starts, stops = offsets[:-1], offsets[1:]
        else:
            starts = np.asarray(layout.starts, dtype=np.int64)
            stops = np.asarray(layout.stops, dtype=np.int64)
        if content_layout.is_numpy:
            content = np.asarray(content_layout.data)
            return JaggedParts(starts, stops - starts, content)
    raise DataError(f"branch {name!r} has type {array.type}: expected a list of numbers per event")


def sort_order(key: JaggedParts, descending: bool) -> IntArray:
    """A permutation of the concatenated lists of ``key`` that orders each list.

    Lists keep their positions; NaN keys go last. The same permutation sorts every
    branch of the same collection (see :func:`apply_order`).
    """
    owner = np.repeat(np.arange(len(key.counts)), key.counts)
    values = key.compact().content.astype(np.float64)
    return np.lexsort((-values if descending else values, owner)).astype(np.int64)


def apply_order(
    parts: JaggedParts, order: IntArray, key: JaggedParts, name: str, key_name: str
) -> JaggedParts:
    """Reorder ``parts`` by a :func:`sort_order` of ``key`` (same list lengths required)."""
    if not np.array_equal(parts.counts, key.counts):
        raise DataError(
            f"cannot sort {name!r} by {key_name!r}: their lists have different lengths "
            "(sort_by must name a branch of the same collection)"
        )
    compact = parts.compact()
    return JaggedParts(compact.starts, compact.counts, compact.content[order])


@dataclass
class ScatterPlan:
    """Where the values of a selection of lists go when a matrix is filled in tiles.

    The matrix of ``stride`` columns is filled ``tile`` rows at a time in a C-ordered
    buffer of ``tile + 1`` rows (see :meth:`FeatureLayout.fill
    <mlaas_jupyter.stream.layout.FeatureLayout.fill>`). Value ``k`` of the selected
    rows' lists, all values in order, goes to cell ``dest[k]`` of the buffer, counted
    from the feature's first column; values past ``length`` go to the spare last row,
    which is never copied out. The values of selected rows ``a:b`` are
    ``bounds[a]:bounds[b]``: ``content[first + bounds[a]:first + bounds[b]]`` when the
    lists lie back to back (``source`` is ``None``), else ``content[source[...]]``.

    Scattering the real values only, into a buffer that stays in cache, beats gathering
    a padded ``(rows, length)`` block and copying it into strided matrix columns:
    padding comes from copying a pre-filled tile, and clipping costs nothing.
    """

    parts_starts: IntArray
    parts_counts: IntArray
    rows: IntArray
    bounds: IntArray
    dest: IntArray
    source: IntArray | None
    first: int

    @classmethod
    def build(
        cls, parts: JaggedParts, rows: IntArray, length: int, stride: int, tile: int
    ) -> ScatterPlan:
        counts = parts.counts[rows]
        bounds = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=bounds[1:])
        before = bounds[:-1]
        step = np.arange(bounds[-1], dtype=np.int64)
        dest = np.repeat(np.arange(len(rows), dtype=np.int64) % tile * stride - before, counts)
        dest += step
        over = np.flatnonzero(counts > length)
        if len(over):  # few lists: their values past `length` go to the spare row
            extra = counts[over] - length
            firsts = before[over] + length - (np.cumsum(extra) - extra)
            dest[np.repeat(firsts, extra) + np.arange(extra.sum())] = tile * stride
        lead = parts.starts[rows] - before
        if len(lead) == 0 or bool((lead == lead[0]).all()):
            return cls(parts.starts, parts.counts, rows, bounds, dest, None, int(lead[:1].sum()))
        source = np.repeat(lead, counts)
        source += step
        return cls(parts.starts, parts.counts, rows, bounds, dest, source, 0)

    def fits(self, parts: JaggedParts, rows: IntArray) -> bool:
        """Whether ``parts`` holds the same lists (branches of one collection do)."""
        pairs = [(rows, self.rows), (parts.counts, self.parts_counts)]
        pairs.append((parts.starts, self.parts_starts))
        return all(a is b or np.array_equal(a, b) for a, b in pairs)

    def values(self, content: np.ndarray[Any, Any], lo: int, hi: int) -> np.ndarray[Any, Any]:
        """Values ``lo:hi`` of the selected lists, in order."""
        if self.source is None:
            return content[self.first + lo : self.first + hi]
        return content[self.source[lo:hi]]


@dataclass
class PadPlan:
    """Where each slot of a ``(rows, length)`` padded block reads from.

    ``index`` points into a branch's content, or is -1 for padding; branches of one
    collection (same list lengths and layout) share one plan.
    """

    starts: IntArray
    counts: IntArray
    index: np.ndarray[Any, Any]
    padded: np.ndarray[Any, np.dtype[np.bool_]]

    @classmethod
    def build(cls, parts: JaggedParts, rows: IntArray, length: int) -> PadPlan:
        starts, counts = parts.starts[rows], parts.counts[rows]
        small = len(parts.content) < 2**31 - 1
        slots: np.ndarray[Any, Any] = np.arange(length, dtype=np.int32 if small else np.int64)
        padded = slots[None, :] >= counts[:, None]
        index = starts.astype(slots.dtype)[:, None] + slots[None, :]
        np.putmask(index, padded, -1)
        return cls(starts, counts, index, padded)

    def fits(self, parts: JaggedParts, rows: IntArray) -> bool:
        return np.array_equal(parts.counts[rows], self.counts) and np.array_equal(
            parts.starts[rows], self.starts
        )


_scratch = threading.local()


def _buffer(name: str, size: int) -> FloatArray:
    """A float32 work buffer of at least ``size`` elements, reused per thread.

    Fresh large buffers cost a page fault per 4 KiB on first touch, which made the
    gather twice as slow; reused ones are already mapped.
    """
    current: FloatArray | None = getattr(_scratch, name, None)
    if current is None or len(current) < size:
        current = np.empty(max(size, 1 << 16), dtype=np.float32)
        setattr(_scratch, name, current)
    return current[:size]


def pad_clip(
    parts: JaggedParts,
    plan: PadPlan,
    pad_value: float,
    out: FloatArray,
    shift: float = 0.0,
    scale: float = 1.0,
) -> None:
    """Write the lists of ``plan``'s rows, clipped/padded to its length, into ``out``.

    Values are normalised as ``(x - shift) * scale``; padded slots hold ``pad_value``
    as given (not normalised). A single gather does it all: the content, normalised,
    gets ``pad_value`` appended, and padded slots index that last element.
    """
    size = len(parts.content)
    content = _buffer("content", size + 1)
    np.subtract(parts.content, np.float32(shift), out=content[:size], casting="unsafe")
    if scale != 1.0:
        content[:size] *= np.float32(scale)
    content[size] = pad_value
    scratch = _buffer("gathered", plan.index.size).reshape(plan.index.shape)
    np.take(content, plan.index, out=scratch)
    out[...] = scratch  # a contiguous gather then one strided copy beats gathering into columns
