"""Class balance: what ``balance: weights`` and ``balance: sample`` do to each class.

:func:`class_balance` is the one computation: with ``weights`` each class's event
weights are multiplied by a factor that gives every class the same sum of weights
in the training split (the factors apply to every split, so that validation and test
losses weigh the classes as training does); with ``sample`` each class keeps, in the
training split, the fraction of its events that the smallest class has. The batch
stream applies it; :func:`balance_report` says per class what it did (sums of
weights and events before and after), for ``mlaas stats``, ``POST stats`` and
``mlaas stream``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..specs.dataset import DatasetSpec
from .stats import DatasetStats

__all__ = ["ClassBalance", "balance_report", "class_balance"]


@dataclass(frozen=True)
class ClassBalance:
    """Per class (by label): the weight ``factor`` and the fraction of events kept
    (``keep``, < 1 only when sampling the training split); ``problem`` says why the
    weights cannot be balanced (a class whose summed weight is not positive)."""

    factor: tuple[float, ...]
    keep: tuple[float, ...]
    problem: str | None = None


def class_balance(spec: DatasetSpec, stats: DatasetStats, split: str = "train") -> ClassBalance:
    """The balance of ``spec``'s classes in ``split``, from the training split's sums."""
    counts = stats.split_events("train")
    sums = stats.split_weights("train")
    n = len(counts)
    ones = (1.0,) * n
    if spec.task == "regression" or spec.balance == "none":
        return ClassBalance(ones, ones)
    if spec.balance == "weights":
        problem = None
        for name, k, s in zip(spec.labels, counts, sums, strict=False):
            if k > 0 and not s > 0:
                problem = (
                    f"balance: weights: class {name!r} has {k} training events but a "
                    f"summed weight of {s:g}; its yield cannot be equalised (with "
                    "negative weights, try weights.negative: abs, or balance: sample)"
                )
                break
        total = sum(sums)
        factor = tuple(total / (n * s) if s > 0 else 0.0 for s in sums)
        return ClassBalance(factor, ones, problem)
    if split != "train":  # sampling thins the training split only
        return ClassBalance(ones, ones)
    smallest = min((k for k in counts if k > 0), default=0)
    return ClassBalance(ones, tuple(smallest / k if k > 0 else 0.0 for k in counts))


def balance_report(
    spec: DatasetSpec, stats: DatasetStats, split: str = "train"
) -> dict[str, Any] | None:
    """What balancing does to each class of ``split``: events and sum of weights before
    and after (expected values when sampling), the weight factor and the fraction of
    events kept; None for a regression (no classes)."""
    if spec.task == "regression":
        return None
    balance = class_balance(spec, stats, split)
    events, sums = stats.split_events(split), stats.split_weights(split)
    classes = {
        name: {
            "events_before": int(events[c]),
            "events_after": round(events[c] * balance.keep[c]),
            "sum_weights_before": float(sums[c]),
            "sum_weights_after": float(sums[c]) * balance.factor[c] * balance.keep[c],
            "factor": balance.factor[c],
            "keep": balance.keep[c],
        }
        for c, name in enumerate(spec.labels)
        if c < len(events)
    }
    return {"method": spec.balance, "split": split, "classes": classes, "problem": balance.problem}
