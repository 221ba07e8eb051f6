"""Histograms of a branch or expression per class, before and after cuts.

The core of ``POST /mlaas/api/histograms`` and of the ``CutEditor`` widget. Events are
read with the streaming layer (:func:`~mlaas_jupyter.stream.open_tree`, chunk by chunk)
and the expressions are the same safe ones as in specs (``compile_expression``,
``cut_mask``), so a histogram shows exactly what a spec with those cuts would train on.
At most ``max_events`` events are read per class; the result says when that cap was hit.
Jagged values (``Jet_pt``) are histogrammed per object, with each event's cut decision
applied to all its objects. Missing, NaN and infinite values are counted as
``nonfinite`` and left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import hist
import numpy as np

from ..errors import ExpressionError
from ..specs.histograms import HistogramRequest
from ._friends import dataset_files
from .expressions import compile_expression, cut_mask
from .sources import open_tree

__all__ = ["compute_histograms"]

_STEP = 200_000
Array = np.ndarray[Any, Any]


@dataclass
class _Class:
    """What one class has read so far: counts, and the finite values with their cut
    decision (at most ``max_events`` events' worth, so memory stays bounded)."""

    files: int = 0
    read: int = 0
    passed: int = 0
    nonfinite: int = 0
    truncated: bool = False
    values: list[Array] = field(default_factory=list)
    keep: list[Array] = field(default_factory=list)


def _per_entry(value: Any, keep: Array, text: str) -> tuple[Array, Array]:
    """Values to histogram (one per event, or one per object) and their cut decision."""
    if isinstance(value, ak.Array):
        if value.ndim == 1:
            return np.asarray(ak.to_numpy(ak.fill_none(value, np.nan)), dtype=np.float64), keep
        if value.ndim == 2:
            value = ak.fill_none(value, [], axis=0)
            counts = np.asarray(ak.to_numpy(ak.num(value, axis=1)), dtype=np.int64)
            flat = ak.fill_none(ak.flatten(value, axis=1), np.nan)
            return np.asarray(ak.to_numpy(flat), dtype=np.float64), np.repeat(keep, counts)
        raise ExpressionError(text, "lists of lists cannot be histogrammed; reduce one level")
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 1:
        return array, keep
    width = int(np.prod(array.shape[1:]))
    return array.reshape(len(array), width).ravel(), np.repeat(keep, width)


def _read_class(request: HistogramRequest, files: list[str], state: _Class) -> None:
    for path in files:
        left = request.events_per_class - state.read
        if left <= 0:
            state.truncated = True
            return
        state.files += 1
        source = open_tree(path, request.tree)
        try:
            known = [b for b, info in source.branches.items() if info.kind != "unsupported"]
            expr = compile_expression(request.expression, known)
            cuts = [compile_expression(text, known) for text in request.cuts]
            columns = sorted(expr.names.union(*(c.names for c in cuts))) or known[:1]
            stop = min(source.entries, left)
            if stop < source.entries:
                state.truncated = True
            for chunk in source.iterate(columns, _STEP, 0, stop):
                keep = np.ones(chunk.entries, dtype=bool)
                for cut in cuts:
                    keep &= cut_mask(cut.evaluate(chunk.columns), cut)
                values, mask = _per_entry(expr.evaluate(chunk.columns), keep, expr.text)
                finite = np.isfinite(values)
                state.nonfinite += int((~finite).sum())
                state.values.append(values[finite])
                state.keep.append(mask[finite])
                state.read += chunk.entries
                state.passed += int(keep.sum())
        finally:
            source.close()


def _auto_range(states: Mapping[str, _Class]) -> tuple[float, float]:
    arrays = [v for s in states.values() for v in s.values if len(v)]
    if not arrays:
        return 0.0, 1.0
    low = float(min(a.min() for a in arrays))
    high = float(max(a.max() for a in arrays))
    if high <= low:
        high = low + 1.0
    # the upper edge is exclusive: move it just past the largest value
    return low, float(np.nextafter(high, np.inf))


def _counts(
    values: Array, bins: int, span: tuple[float, float]
) -> tuple[list[float], float, float]:
    histogram = hist.Hist(hist.axis.Regular(bins, span[0], span[1]))
    histogram.fill(values)
    flow = histogram.values(flow=True)
    return [float(x) for x in flow[1:-1]], float(flow[0]), float(flow[-1])


def compute_histograms(
    request: HistogramRequest, check_path: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """Read the classes' events (capped) and histogram them before and after the cuts.

    Parameters
    ----------
    request
        Classes (name -> files), the branch or expression, cuts, binning and cap.
    check_path
        Called on every file pattern before it is read; returns the pattern to use or
        raises (the server confines paths to its data roots this way).

    Raises
    ------
    SourceError, ExpressionError, SpecError
        For unreadable files, bad expressions or fields (and what ``check_path`` raises).
    """
    states: dict[str, _Class] = {}
    skipped: list[str] = []
    for name, patterns in request.classes.items():
        checked = [check_path(p) for p in patterns] if check_path is not None else patterns
        files, notes = dataset_files(checked, f"class {name!r}")
        skipped += notes
        states[name] = _Class()
        _read_class(request, files, states[name])
    span = request.range or _auto_range(states)
    edges = np.linspace(span[0], span[1], request.bins + 1)
    classes: dict[str, Any] = {}
    for name, state in states.items():
        values = np.concatenate(state.values) if state.values else np.zeros(0)
        keep = np.concatenate(state.keep) if state.keep else np.zeros(0, dtype=bool)
        before, under_b, over_b = _counts(values, request.bins, span)
        after, under_a, over_a = _counts(values[keep], request.bins, span)
        classes[name] = {
            "files": state.files,
            "events_read": state.read,
            "events_passed": state.passed,
            "efficiency": state.passed / state.read if state.read else None,
            "before": before,
            "after": after,
            "bin_efficiency": [a / b if b else None for a, b in zip(after, before, strict=True)],
            "underflow": {"before": under_b, "after": under_a},
            "overflow": {"before": over_b, "after": over_a},
            "nonfinite": state.nonfinite,
            "truncated": state.truncated,
        }
    truncated = any(s.truncated for s in states.values())
    return {
        "expression": request.expression,
        "tree": request.tree,
        "cuts": list(request.cuts),
        "bins": request.bins,
        "range": [span[0], span[1]],
        "edges": edges.tolist(),
        "max_events": request.events_per_class,
        "truncated": truncated,
        "note": "; ".join(
            [
                f"at most {request.events_per_class} events are read per class"
                + (" (the cap was reached)" if truncated else ""),
                *skipped,  # friend trees of scores left out
            ]
        ),
        "classes": classes,
    }
