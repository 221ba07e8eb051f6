"""The per-tile steps of :meth:`FeatureLayout.fill <.layout.FeatureLayout.fill>`.

Each step writes rows ``a:b`` of one feature into a tile buffer that stays in cache;
the layout copies each finished tile into the training matrix.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .jagged import ScatterPlan, _buffer

__all__ = ["TILE_BYTES", "Scaled", "columns", "scatter", "scatter_ones"]


class Scaled(Protocol):
    """What a step needs of a feature (a :class:`.layout.Feature`): its width and its
    normalisation ``(x - shift) * scale``. A protocol, not the class: the layout
    imports these steps, so they must not import the layout."""

    @property
    def width(self) -> int: ...

    @property
    def shift(self) -> float: ...

    @property
    def scale(self) -> float: ...


#: bytes of matrix rows assembled at a time (measured: 1 MB tiles beat 256 KB ones)
TILE_BYTES = 1 << 20


def columns(
    column: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any] | None,
    block: np.ndarray[Any, np.dtype[np.float32]],
    f: Scaled,
    a: int,
    b: int,
) -> None:
    values = column[a:b] if rows is None else column[rows[a:b]]
    values = values.reshape(b - a, f.width)
    if f.shift == 0.0 and f.scale == 1.0 and values.dtype == np.float32:
        block[: b - a] = values
        return
    # normalised contiguously (vectorised), then one strided copy into the tile
    normalised = _buffer("columns", values.size).reshape(values.shape)
    np.subtract(values, np.float32(f.shift), out=normalised, casting="unsafe")
    if f.scale != 1.0:
        normalised *= np.float32(f.scale)
    block[: b - a] = normalised


def scatter(
    plan: ScatterPlan,
    content: np.ndarray[Any, Any],
    cells: np.ndarray[Any, np.dtype[np.float32]],
    f: Scaled,
    a: int,
    b: int,
) -> None:
    lo, hi = int(plan.bounds[a]), int(plan.bounds[b])
    if hi == lo:
        return
    values = plan.values(content, lo, hi)
    if f.shift != 0.0 or f.scale != 1.0 or values.dtype != np.float32:
        normalised = _buffer("values", hi - lo)
        np.subtract(values, np.float32(f.shift), out=normalised, casting="unsafe")
        if f.scale != 1.0:
            normalised *= np.float32(f.scale)
        values = normalised
    cells[plan.dest[lo:hi]] = values


def scatter_ones(
    plan: ScatterPlan, cells: np.ndarray[Any, np.dtype[np.float32]], a: int, b: int
) -> None:
    lo, hi = int(plan.bounds[a]), int(plan.bounds[b])
    if hi > lo:
        cells[plan.dest[lo:hi]] = _ones(hi - lo)


_ONES = np.ones(1 << 16, dtype=np.float32)


def _ones(size: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    global _ONES
    if len(_ONES) < size:
        _ONES = np.ones(size, dtype=np.float32)  # replaced whole, never written: thread-safe
    return _ONES[:size]
