"""What a physicist reads off a statistics pass: per class, events and expected yield.

:func:`stats_summary` is the one answer of ``mlaas stats SPEC --json``, of the REST
route ``POST /mlaas/api/stats``, of ``Client.dataset_stats`` and ``%mlaas stats``.
"""

from __future__ import annotations

import math
from typing import Any

from ..specs.dataset import DatasetSpec
from ._balance import balance_report
from .plan import SPLITS
from .stats import DatasetStats

__all__ = ["stats_summary"]

_MOMENTS = ("mean", "std", "min", "max")


def _finite(value: float) -> float | None:
    # a feature with no values has min = inf: JSON has no infinity
    return value if math.isfinite(value) else None


def stats_summary(spec: DatasetSpec, stats: DatasetStats) -> dict[str, Any]:
    """Per class: ``events`` after cuts, ``yield`` (the sum of normalised weights after
    cuts: expected events at ``luminosity`` when the spec has one, else the weighted
    event count) and ``negative_fraction`` (of events whose raw weight is < 0); per
    split the same counts; the samples' normalisation; ``balancing``, what ``balance``
    does to each class of the training split (events and sums of weights before and
    after, see :func:`._balance.balance_report`); and the whole pass's numbers.
    """
    labels = spec.labels if spec.task != "regression" else ("all",)
    classes: dict[str, Any] = {}
    for c, name in enumerate(labels):
        events = int(sum(stats.events[c]))
        negative = int(sum(stats.negative[c])) if stats.negative else 0
        classes[name] = {
            "events": events,
            "yield": float(sum(stats.weights[c])),
            "negative_fraction": negative / events if events else 0.0,
            "splits": {
                split: {"events": stats.events[c][s], "yield": stats.weights[c][s]}
                for s, split in enumerate(SPLITS)
            },
        }
    return {
        "classes": classes,
        "luminosity": spec.luminosity,
        "weights": spec.weights.model_dump() if spec.weights is not None else None,
        "balance": spec.balance,
        "balancing": balance_report(spec, stats),
        "samples": stats.samples,
        "events_read": stats.entries_total,
        "events_selected": stats.events_selected,
        "dropped_nonfinite": stats.dropped_nonfinite,
        "files": stats.files,
        "notes": stats.notes,
        "features": {
            name: {
                "kind": f.kind,
                **{k: _finite(getattr(f, k)) for k in _MOMENTS},
                **({"lengths": f.lengths} if f.lengths else {}),
            }
            for name, f in stats.features.items()
        },
        "cached": stats.entries_read == 0,
        "key": stats.key,
    }
