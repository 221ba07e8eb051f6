"""Physics metrics of a classifier: weighted ROC, background rejection, best cut.

Signal is label 1 of a binary task and the last class of a multi-class one (against
all other classes), scored by its own probability. Every event counts with its
expected yield (``xsec * luminosity * w / sum_w``, scaled to the whole dataset), so the
numbers are those of the analysis, not of the simulated sample sizes. Generator
weights may be negative: the ROC is then built by hand (sklearn's ``roc_auc_score``
refuses a curve that is not monotonic), and its area is the trapezoid along the curve
in threshold order, which equals the weighted Mann-Whitney statistic
``sum_ij w_i w_j [s_i > b_j] / (S * B)`` (ties count one half).

Quantities that would be infinite (a rejection where no background passes the cut)
are stored as ``None``: JSON has no infinity, and ``None`` reads as "not measurable with
this test sample".
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "MIN_BACKGROUND_EVENTS",
    "MIN_BACKGROUND_YIELD",
    "asimov_significance",
    "best_cut",
    "physics_metrics",
    "rejection_at",
    "rejection_curve",
    "signal_scores",
    "weighted_auc",
    "weighted_roc",
]

Array = np.ndarray[Any, Any]

#: A cut must keep at least this many expected background events ...
MIN_BACKGROUND_YIELD = 1.0
#: ... and this many simulated background events of the test split: below that the
#: background estimate is a handful of MC events (about 30% statistical uncertainty at
#: 10) and the "best" cut is the one that happens to leave the fewest of them.
MIN_BACKGROUND_EVENTS = 10
#: Score thresholds scanned for the best cut: the lower edges of a fine score axis.
CUT_BINS = 200


def signal_scores(task: str, y: Array, scores: Array) -> tuple[Array, Array]:
    """Whether each event is signal, and its signal score (see the module's docstring)."""
    if task == "multiclass":
        last = scores.shape[1] - 1
        return y.astype(np.int64) == last, scores[:, last].astype(np.float64)
    return y.astype(np.int64) == 1, np.ravel(scores).astype(np.float64)


def weighted_roc(signal: Array, score: Array, w: Array) -> tuple[Array, Array, Array]:
    """Signal and background efficiencies of the cuts ``score >= t`` for every distinct
    score ``t`` (tightest first, starting at (0, 0)), and the thresholds.

    Raises ``ValueError`` when a class has no positive total weight (efficiencies of
    nothing are undefined).
    """
    w = w.astype(np.float64)
    total_s, total_b = float(w[signal].sum()), float(w[~signal].sum())
    if not (total_s > 0 and total_b > 0):
        raise ValueError(f"signal weight {total_s} and background weight {total_b} must be > 0")
    order = np.argsort(-score, kind="mergesort")
    ordered = score[order]
    # the last event of each group of equal scores: a cut keeps a whole group or none
    last = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]
    kept_s = np.cumsum(np.where(signal, w, 0.0)[order])[last] / total_s
    kept_b = np.cumsum(np.where(signal, 0.0, w)[order])[last] / total_b
    return np.r_[0.0, kept_s], np.r_[0.0, kept_b], np.r_[np.inf, ordered[last]]


def weighted_auc(signal: Array, score: Array, w: Array) -> float | None:
    """Area under the weighted ROC (None without both classes)."""
    try:
        eff_s, eff_b, _ = weighted_roc(signal, score, w)
    except ValueError:
        return None
    return float(np.sum(np.diff(eff_b) * (eff_s[1:] + eff_s[:-1]) / 2))


def rejection_at(eff_s: Array, eff_b: Array, target: float) -> float | None:
    """Background rejection ``1/eff_b`` at signal efficiency ``target``, interpolated
    linearly on the ROC where it first reaches ``target``; None when no background
    (or a negative net weight of it) passes there."""
    reached = np.flatnonzero(eff_s >= target)
    if not len(reached) or reached[0] == 0:
        return None
    k = reached[0]
    fraction = (target - eff_s[k - 1]) / (eff_s[k] - eff_s[k - 1])
    background = float(eff_b[k - 1] + fraction * (eff_b[k] - eff_b[k - 1]))
    return 1.0 / background if background > 0 else None


def asimov_significance(s: Any, b: Any) -> Any:
    """Expected discovery significance ``sqrt(2((s+b) ln(1+s/b) - s))`` for ``s``
    signal over ``b`` > 0 background events; 0 where ``s`` <= 0."""
    s_, b_ = np.asarray(s, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = 2 * ((s_ + b_) * np.log1p(s_ / b_) - s_)
    z = np.where((s_ > 0) & (b_ > 0), np.sqrt(np.maximum(q, 0.0)), 0.0)
    return float(z) if z.ndim == 0 else z


def best_cut(signal: Array, score: Array, yields: Array) -> dict[str, float] | None:
    """The cut ``score >= t`` of highest Asimov significance, t on a 200-bin score axis,
    keeping at least :data:`MIN_BACKGROUND_YIELD` expected and
    :data:`MIN_BACKGROUND_EVENTS` simulated background events; None if no cut does."""
    edges = np.linspace(0.0, 1.0, CUT_BINS + 1)
    clipped = np.clip(score, 0.0, 1.0)

    def above(chosen: Array, weights: Array | None) -> Array:
        counts, _ = np.histogram(clipped[chosen], edges, weights=weights)
        return np.cumsum(counts[::-1])[::-1]  # events with score >= each lower edge

    s = above(signal, yields[signal])
    b = above(~signal, yields[~signal])
    simulated = above(~signal, None)
    z = asimov_significance(s, b)
    allowed = (b >= MIN_BACKGROUND_YIELD) & (simulated >= MIN_BACKGROUND_EVENTS) & (s > 0)
    if not allowed.any():
        return None
    i = int(np.argmax(np.where(allowed, z, -1.0)))
    return {
        "score": float(edges[i]),
        "signal": float(s[i]),
        "background": float(b[i]),
        "significance": float(z[i]),
    }


def physics_metrics(
    task: str, y: Array, scores: Array, yields: Array, luminosity: float | None = None
) -> dict[str, Any]:
    """``auc_weighted``, ``rejection_at_50``, ``rejection_at_90``, ``best_cut`` (and the
    ``luminosity`` in pb^-1 they are for, when known) of a classifier's test scores;
    ``yields`` holds each event's expected yield. Nothing for regression."""
    if task not in ("binary", "multiclass") or len(y) == 0:
        return {}
    signal, score = signal_scores(task, y, scores)
    yields = np.asarray(yields, dtype=np.float64)
    out: dict[str, Any] = {
        "auc_weighted": None,
        "rejection_at_50": None,
        "rejection_at_90": None,
        "best_cut": None,
    }
    try:
        eff_s, eff_b, _ = weighted_roc(signal, score, yields)
    except ValueError:
        pass  # a single class (or no positive yield of one): nothing to measure
    else:
        out["auc_weighted"] = float(np.sum(np.diff(eff_b) * (eff_s[1:] + eff_s[:-1]) / 2))
        out["rejection_at_50"] = rejection_at(eff_s, eff_b, 0.5)
        out["rejection_at_90"] = rejection_at(eff_s, eff_b, 0.9)
        out["best_cut"] = best_cut(signal, score, yields)
    if luminosity is not None:
        out["luminosity"] = float(luminosity)
    return out


def rejection_curve(
    signal: Array, score: Array, w: Array, points: int = 200
) -> dict[str, list[float]]:
    """Signal efficiency and background rejection along the weighted ROC, where the
    rejection is finite, thinned to about ``points`` points."""
    try:
        eff_s, eff_b, _ = weighted_roc(signal, score, w)
    except ValueError:
        return {"signal_efficiency": [], "background_rejection": []}
    finite = (eff_b > 0) & (eff_s > 0)
    eff_s, eff_b = eff_s[finite], eff_b[finite]
    keep = np.unique(np.linspace(0, len(eff_s) - 1, min(points, len(eff_s))).astype(int))
    return {
        "signal_efficiency": eff_s[keep].round(6).tolist(),
        "background_rejection": (1.0 / eff_b[keep]).tolist(),
    }
