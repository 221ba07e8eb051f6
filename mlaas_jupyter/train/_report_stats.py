"""The statistics of the training report, pure NumPy/SciPy on arrays with event weights.

Every function takes the values and their weights and returns plain Python numbers or
lists (JSON-ready, never NaN: an undefined value is None):

* :func:`weighted_ks`: the two-sample Kolmogorov-Smirnov statistic of weighted ECDFs and
  its p-value for the effective sample sizes ``n_eff = (sum w)^2 / sum w^2``;
* :func:`separation`: TMVA's ``<S^2> = 1/2 sum (yS - yB)^2 / (yS + yB)`` of normalised
  histograms (0 for identical, 1 for disjoint distributions);
* :func:`efficiencies`: signal efficiency at fixed background efficiencies on the
  weighted ROC (linear interpolation), and the ROC integral;
* :func:`weighted_correlations`: Pearson correlations with weights (``np.cov``'s
  ``aweights``), leaving out constant columns;
* :func:`confusion`: the weighted confusion matrix of the argmax and its row fractions;
* :func:`regression_summary`: residuals, bias (weighted median) and resolution (half the
  weighted 16-84% width) in bins of the true target, R^2 and MAE.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .physics import weighted_auc, weighted_roc

__all__ = [
    "BACKGROUND_EFFICIENCIES",
    "DEFINITIONS",
    "confusion",
    "density_histograms",
    "effective_size",
    "efficiencies",
    "regression_summary",
    "separation",
    "weighted_correlations",
    "weighted_ks",
    "weighted_quantile",
]

Array = np.ndarray[Any, Any]

#: what the regression section's "bias" and "resolution" of a bin are
DEFINITIONS = {
    "bias_definition": "weighted median of the residual",
    "resolution_definition": "half the weighted 16-84% width of the residual",
}

#: background efficiencies at which the signal efficiency is reported (TMVA's set)
BACKGROUND_EFFICIENCIES = (0.001, 0.01, 0.1, 0.3)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def effective_size(w: Array) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 without weight)."""
    w = np.asarray(w, dtype=np.float64)
    squares = float(np.square(w).sum())
    return float(w.sum()) ** 2 / squares if squares > 0 else 0.0


def _ecdf(sorted_values: Array, sorted_weights: Array, at: Array) -> Array:
    """The weighted ECDF of a sorted sample at the points ``at`` (right-continuous)."""
    total = float(sorted_weights.sum())
    cumulative = np.r_[0.0, np.cumsum(sorted_weights)]
    result: Array = cumulative[np.searchsorted(sorted_values, at, side="right")] / total
    return result


def weighted_ks(a: Array, wa: Array, b: Array, wb: Array) -> tuple[float | None, float | None]:
    """Two-sample KS statistic ``D = max |F_a - F_b|`` of the weighted ECDFs and its
    p-value; (None, None) when a sample has no positive total weight.

    The p-value is ``scipy.stats.kstwo.sf(D, round(n))`` with
    ``n = n_a n_b / (n_a + n_b)`` of the effective sizes: what ``scipy.stats.ks_2samp``
    (``method="asymp"``) computes for unit weights, where ``n_eff`` is the count.
    """
    from scipy.stats import kstwo

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    wa, wb = np.asarray(wa, dtype=np.float64), np.asarray(wb, dtype=np.float64)
    if not (len(a) and len(b)) or not (wa.sum() > 0 and wb.sum() > 0):
        return None, None
    oa, ob = np.argsort(a, kind="mergesort"), np.argsort(b, kind="mergesort")
    sa, sb = a[oa], b[ob]
    points = np.union1d(sa, sb)
    d = float(np.max(np.abs(_ecdf(sa, wa[oa], points) - _ecdf(sb, wb[ob], points))))
    na, nb = effective_size(wa), effective_size(wb)
    n = max(1.0, float(np.round(na * nb / (na + nb))))
    return d, _finite(float(np.clip(kstwo.sf(d, n), 0.0, 1.0)))


def score_edges(*samples: Array, bins: int = 40) -> Array:
    """``bins`` equal bins over [0, 1] when every value lies there (probabilities), else
    over the values' range."""
    values = [np.asarray(s, dtype=np.float64) for s in samples if len(s)]
    if not values:
        return np.linspace(0.0, 1.0, bins + 1)
    low = min(float(v.min()) for v in values)
    high = max(float(v.max()) for v in values)
    if low >= 0.0 and high <= 1.0:
        return np.linspace(0.0, 1.0, bins + 1)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def density_histograms(values: Array, w: Array, edges: Array) -> Array:
    """The weighted histogram normalised to unit area (a density; zeros without
    weight); values outside the edges go into the first or last bin."""
    values = np.clip(np.asarray(values, dtype=np.float64), edges[0], edges[-1])
    counts, _ = np.histogram(values, bins=edges, weights=np.asarray(w, dtype=np.float64))
    total = float(counts.sum())
    if total == 0:
        return np.zeros(len(edges) - 1)
    result: Array = counts / (total * np.diff(edges))
    return result


def separation(s: Array, ws: Array, b: Array, wb: Array, bins: int = 100) -> float | None:
    """TMVA's separation ``<S^2>`` of two weighted distributions, from normalised
    histograms of ``bins`` bins over their common range (None without weight)."""
    if not (len(s) and len(b)) or not (np.sum(ws) > 0 and np.sum(wb) > 0):
        return None
    edges = score_edges(s, b, bins=bins)
    ys = density_histograms(s, ws, edges) * np.diff(edges)
    yb = density_histograms(b, wb, edges) * np.diff(edges)
    total = ys + yb
    used = total > 0
    return float(0.5 * np.sum((ys[used] - yb[used]) ** 2 / total[used]))


def efficiencies(
    signal: Array, score: Array, w: Array, targets: tuple[float, ...] = BACKGROUND_EFFICIENCIES
) -> dict[str, Any]:
    """Signal efficiency at each background efficiency of ``targets`` (interpolated
    linearly on the weighted ROC of the cuts ``score >= t``), the ROC integral and the
    separation; None where undefined (a class without weight)."""
    signal = np.asarray(signal, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    at: dict[str, float | None] = {str(t): None for t in targets}
    try:
        eff_s, eff_b, _ = weighted_roc(signal, score, w)
    except ValueError:
        return {"signal_at_background": at, "roc_integral": None, "separation": None}
    # negative weights can make the ROC step back: interpolate on its running maximum
    eff_b = np.maximum.accumulate(eff_b)
    for t in targets:
        at[str(t)] = float(np.interp(t, eff_b, eff_s))
    return {
        "signal_at_background": at,
        "roc_integral": weighted_auc(signal, score, w),
        "separation": separation(score[signal], w[signal], score[~signal], w[~signal]),
    }


def weighted_correlations(
    x: Array, w: Array, names: list[str]
) -> tuple[list[str], list[str], Array]:
    """Weighted Pearson correlations of the columns of ``x``: (the columns used, the
    constant ones left out, the matrix). Negative total weight: unit weights."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if len(x) == 0:
        return [], list(names), np.zeros((0, 0))
    if not w.sum() > 0 or (w < 0).any():
        w = np.ones(len(x))  # np.cov refuses negative aweights
    mean = (x * w[:, None]).sum(axis=0) / w.sum()
    variance = (w[:, None] * (x - mean) ** 2).sum(axis=0) / w.sum()
    scale = np.maximum(np.abs(mean), 1.0)
    varying = variance > (1e-12 * scale) ** 2
    used = [n for n, keep in zip(names, varying, strict=True) if keep]
    constant = [n for n, keep in zip(names, varying, strict=True) if not keep]
    if not used:
        return [], constant, np.zeros((0, 0))
    chosen = x[:, varying] - mean[varying]
    cov = (chosen * w[:, None]).T @ chosen / w.sum()
    std = np.sqrt(np.diag(cov))
    matrix = np.clip(cov / np.outer(std, std), -1.0, 1.0)
    np.fill_diagonal(matrix, 1.0)
    return used, constant, matrix


def confusion(
    y: Array, predicted: Array, w: Array, n_classes: int
) -> tuple[list[list[float]], list[list[float | None]]]:
    """Weighted counts ``matrix[true][predicted]`` and the rows as fractions (None for a
    class without weight)."""
    matrix = np.zeros((n_classes, n_classes))
    np.add.at(matrix, (np.asarray(y, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), w)
    rows = matrix.sum(axis=1)
    normalised: list[list[float | None]] = [
        [float(v / rows[k]) for v in matrix[k]] if rows[k] != 0 else [None] * n_classes
        for k in range(n_classes)
    ]
    return matrix.tolist(), normalised


def weighted_quantile(values: Array, w: Array, q: Array | float | list[float]) -> Array:
    """Quantiles of a weighted sample: the inverse of its weighted ECDF with midpoint
    interpolation (unit weights: ``np.quantile(..., method="hazen")``)."""
    values = np.asarray(values, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    v, ww = values[order], np.clip(w[order], 0.0, None)
    if not ww.sum() > 0:
        ww = np.ones(len(v))
    positions = (np.cumsum(ww) - 0.5 * ww) / ww.sum()
    result: Array = np.interp(q, positions, v)
    return result


def _weighted_moments(values: Array, w: Array) -> tuple[float, float]:
    total = float(w.sum())
    if not total > 0:
        w, total = np.ones(len(values)), float(len(values))
    mean = float((values * w).sum() / total)
    return mean, math.sqrt(max(0.0, float((w * (values - mean) ** 2).sum() / total)))


def regression_summary(
    truth: Array, predicted: Array, w: Array, bins: int = 10, residual_bins: int = 50
) -> dict[str, Any]:
    """Residuals ``predicted - truth``: their histogram (between the 0.5% and 99.5%
    quantiles), weighted mean and standard deviation; in ``bins`` quantile bins of the
    true target the bias (weighted median of the residual) and the resolution (half the
    weighted 16-84% width); R^2 and MAE."""
    truth = np.asarray(truth, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    w = np.asarray(w, dtype=np.float64)
    residual = predicted - truth
    if len(truth) == 0:
        return {"residuals": {"edges": [], "counts": []}, "mean": None, "std": None,
                "binned": [], "r2": None, "mae": None,
                **DEFINITIONS}  # fmt: skip
    low, high = weighted_quantile(residual, w, [0.005, 0.995])
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, residual_bins + 1)
    counts, _ = np.histogram(np.clip(residual, low, high), bins=edges, weights=w)
    mean, std = _weighted_moments(residual, w)
    _truth_mean, truth_std = _weighted_moments(truth, w)
    r2 = 1.0 - std_sq_error(residual, w) / truth_std**2 if truth_std > 0 else None
    weight = w if w.sum() > 0 else np.ones(len(w))
    mae = float((np.abs(residual) * weight).sum() / weight.sum())
    cuts = np.unique(weighted_quantile(truth, w, np.linspace(0.0, 1.0, bins + 1)))
    binned = []
    for k in range(len(cuts) - 1):
        a, b = cuts[k], cuts[k + 1]
        chosen = (truth >= a) & ((truth < b) if k < len(cuts) - 2 else (truth <= b))
        if not chosen.any():
            continue
        q16, q50, q84 = weighted_quantile(residual[chosen], w[chosen], [0.16, 0.5, 0.84])
        binned.append({"low": float(a), "high": float(b), "events": int(chosen.sum()),
                       "bias": float(q50), "resolution": float((q84 - q16) / 2)})  # fmt: skip
    return {
        "residuals": {"edges": edges.tolist(), "counts": counts.tolist()},
        "mean": mean,
        "std": std,
        "binned": binned,
        "r2": _finite(r2) if r2 is not None else None,
        "mae": mae,
        **DEFINITIONS,
    }


def std_sq_error(residual: Array, w: Array) -> float:
    """The weighted mean squared residual (unit weights without positive total)."""
    weight = w if w.sum() > 0 else np.ones(len(w))
    return float((weight * residual**2).sum() / weight.sum())
