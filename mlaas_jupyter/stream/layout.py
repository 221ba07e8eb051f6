"""`FeatureLayout`: which columns of the training matrix hold what, and how to fill them.

The layout is decided once from the spec and the statistics: column order, jagged
lengths, sort keys, pad values, masks and normalisation constants. It serialises
to a plain dict, which bundles store so that serving turns raw events into
exactly the vectors the model was trained on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from ..errors import DataError
from ..specs.dataset import DatasetSpec
from ._fill import TILE_BYTES, columns, scatter, scatter_ones
from .jagged import JaggedParts, ScatterPlan, apply_order, sort_order
from .stats import DatasetStats

__all__ = ["Feature", "FeatureLayout"]


@dataclass(frozen=True)
class Feature:
    """A block of ``width`` columns starting at ``offset``.

    ``kind`` is ``flat`` (1 column), ``fixed`` (a fixed-size array), ``jagged``
    (``width`` objects, padded with ``pad_value``) or ``mask`` (1 for a real
    object of the collection ``mask_of``, 0 for padding). Values are normalised
    as ``(x - shift) * scale``.
    """

    name: str
    kind: str
    offset: int
    width: int
    shift: float = 0.0
    scale: float = 1.0
    pad_value: float = 0.0
    sort_by: str | None = None
    descending: bool = True
    mask_of: tuple[str, ...] = ()
    group: str = ""  # jagged branches of one collection (equal list lengths) share it

    @property
    def columns(self) -> list[str]:
        if self.kind == "flat":
            return [self.name]
        return [f"{self.name}[{i}]" for i in range(self.width)]


def _normalisation(mode: str, stats: Any) -> tuple[float, float]:
    if mode == "standard" and stats.count:
        return stats.mean, (1.0 / stats.std if stats.std > 0 else 1.0)
    if mode == "minmax" and stats.count:
        span = stats.max - stats.min
        return stats.min, (1.0 / span if span > 0 else 1.0)
    return 0.0, 1.0


@dataclass(frozen=True)
class FeatureLayout:
    """The ordered features of the matrix; ``width`` columns in all."""

    features: tuple[Feature, ...]
    normalisation: str = "none"

    @property
    def width(self) -> int:
        return sum(f.width for f in self.features)

    @property
    def column_names(self) -> list[str]:
        return [c for f in self.features for c in f.columns]

    @property
    def inputs(self) -> list[str]:
        """Names of the branches (or new branches) a raw event must provide."""
        names = [f.name for f in self.features if f.kind != "mask"]
        names += [f.sort_by for f in self.features if f.sort_by and f.sort_by not in names]
        return list(dict.fromkeys(names))

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @classmethod
    def build(
        cls, spec: DatasetSpec, kinds: Mapping[str, str], stats: DatasetStats
    ) -> FeatureLayout:
        features: list[Feature] = []
        offset = 0
        groups: dict[tuple[str, int], list[str]] = {}
        for name, kind in kinds.items():
            fstats = stats.features[name]
            shift, scale = _normalisation(spec.normalisation, fstats)
            width = 1
            extra: dict[str, Any] = {}
            if kind == "fixed":
                width = int(fstats.count // max(1, stats.events_selected)) or 1
            elif kind == "jagged":
                js = spec.jagged_for(name)
                if isinstance(js.length, int):
                    width = js.length
                elif js.length == "max":
                    width = fstats.max_length
                else:
                    width = fstats.length_quantile(js.quantile)
                extra = {
                    "pad_value": js.pad_value,
                    "sort_by": js.sort_by,
                    "descending": js.descending,
                    "group": fstats.digest[:16],
                }
                if js.sort_by is not None:
                    key_stats = stats.features.get(js.sort_by)
                    if (
                        key_stats is not None
                        and key_stats.digest
                        and key_stats.digest != fstats.digest
                    ):
                        raise DataError(
                            f"cannot sort {name!r} by {js.sort_by!r}: their lists have different "
                            "lengths (sort_by must name a branch of the same collection)"
                        )
                if js.mask:
                    groups.setdefault((fstats.digest, width), []).append(name)
            features.append(Feature(name, kind, offset, width, shift, scale, **extra))
            offset += width
        for (_, width), members in groups.items():
            # character-wise on purpose: Jet_pt, Jet_eta -> "Jet"
            prefix = os.path.commonprefix(members).rstrip("_") if len(members) > 1 else ""  # noqa: RUF071
            mask = Feature(
                f"{prefix or members[0]}.mask", "mask", offset, width, mask_of=tuple(members)
            )
            features.append(mask)
            offset += width
        return cls(tuple(features), spec.normalisation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "normalisation": self.normalisation,
            "width": self.width,
            "features": [{**asdict(f), "mask_of": list(f.mask_of)} for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureLayout:
        features = tuple(
            replace(Feature(**{**f, "mask_of": ()}), mask_of=tuple(f.get("mask_of", ())))
            for f in data["features"]
        )
        return cls(features, str(data.get("normalisation", "none")))

    # -- filling -----------------------------------------------------------------
    def fill(
        self,
        flat: Mapping[str, np.ndarray[Any, Any]],
        jagged: Mapping[str, JaggedParts],
        rows: np.ndarray[Any, Any],
        out: np.ndarray[Any, Any] | None = None,
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Write events ``rows`` of the given columns into a ``(len(rows), width)`` matrix.

        Rows are assembled a tile at a time in a buffer small enough to stay in cache,
        then copied out whole: every feature writes its columns in cache, and the
        matrix goes through memory once instead of once per feature.
        """
        n, width = len(rows), self.width
        if out is None:
            out = np.empty((n, width), dtype=np.float32)
        if n == 0:
            return out
        tile = min(n, max(64, TILE_BYTES // (4 * max(1, width))))
        buffer = np.empty((tile + 1, width), dtype=np.float32)  # + the spare row of clipping
        steps = self._steps(flat, jagged, rows, buffer, tile)
        template = self._template(tile)
        for a in range(0, n, tile):
            b = min(a + tile, n)
            if template is not None:
                buffer[: b - a] = template[: b - a]
            for step in steps:
                step(a, b)
            out[a:b] = buffer[: b - a]
        return out

    def _steps(
        self,
        flat: Mapping[str, np.ndarray[Any, Any]],
        jagged: Mapping[str, JaggedParts],
        rows: np.ndarray[Any, Any],
        buffer: np.ndarray[Any, np.dtype[np.float32]],
        tile: int,
    ) -> list[Callable[[int, int], None]]:
        """One ``step(a, b)`` per feature, writing rows ``a:b`` into the tile buffer."""
        width = self.width
        every = len(rows) == len(next(iter(flat.values()), rows)) and np.array_equal(
            rows, np.arange(len(rows))
        )
        steps: list[Callable[[int, int], None]] = []
        plans: dict[tuple[str, int], ScatterPlan] = {}
        orders: dict[tuple[str, bool], np.ndarray[Any, Any]] = {}
        cells = buffer.reshape(-1)

        def plan_for(parts: JaggedParts, length: int, group: str) -> ScatterPlan:
            cached = plans.get((group, length))
            if cached is None or not cached.fits(parts, rows):
                cached = ScatterPlan.build(parts, rows, length, width, tile)
                plans[(group, length)] = cached
            return cached

        for f in self.features:
            if f.kind == "mask":
                member = self.feature(f.mask_of[0])
                parts = jagged[member.name]
                if member.sort_by is not None:
                    parts = parts.compact()  # sorting keeps lengths: same mask
                plan = plan_for(parts, f.width, member.group or member.name)
                steps.append(partial(scatter_ones, plan, cells[f.offset :]))
            elif f.kind == "jagged":
                parts = jagged[f.name]
                if f.sort_by is not None:
                    key = jagged[f.sort_by]
                    how = (f.sort_by, f.descending)
                    if how not in orders:
                        orders[how] = sort_order(key, f.descending)
                    parts = apply_order(parts, orders[how], key, f.name, f.sort_by)
                plan = plan_for(parts, f.width, f.group or f.name)
                steps.append(partial(scatter, plan, parts.content, cells[f.offset :], f))
            else:
                block = buffer[:, f.offset : f.offset + f.width]
                steps.append(partial(columns, flat[f.name], None if every else rows, block, f))
        return steps

    def _template(self, tile: int) -> np.ndarray[Any, np.dtype[np.float32]] | None:
        """Tile rows holding the pad value (0 for masks) in jagged and mask columns,
        copied into the buffer before each tile's real values are scattered."""
        row = np.zeros(self.width, dtype=np.float32)
        for f in self.features:
            if f.kind == "jagged":
                row[f.offset : f.offset + f.width] = f.pad_value
        if not any(f.kind in ("jagged", "mask") for f in self.features):
            return None
        return np.broadcast_to(row, (tile, self.width)).copy()
