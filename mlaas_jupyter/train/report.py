"""The training report (``RUN_DIR/report.json`` and ``RUN_DIR/plots/report_*.png``).

What TMVA shows after a training, for every finished run:

* **overtraining**: weighted train and test distributions of the signal-class score (the
  last class; regression: the prediction, pseudo-class ``all``) per class, with the
  weighted Kolmogorov-Smirnov statistic and p-value (:func:`._report_stats.weighted_ks`);
  a class is flagged when ``p < training.report.ks_threshold``;
* **ranking**: permutation importance of every variable and column (:mod:`._report_ranking`)
  and the BDT's split gains;
* **correlations**: weighted correlation matrices of the model's inputs per class (the
  matrix columns after cuts and normalisation; mask and constant columns left out);
* **efficiencies**: signal efficiency at background efficiencies 0.001, 0.01, 0.1, 0.3,
  the ROC integral and the separation ``<S^2>`` of the signal-class score;
* multi-class: the weighted **confusion** matrix of the argmax and **one-vs-rest** ROCs;
* **regression**: residuals, bias and resolution in bins of the target, R^2, MAE.

Weights are the split's event weights as the stream gives them (with the class balancing
factor, which changes no per-class distribution or efficiency, but does the confusion
matrix's counts). At most ``training.report.max_events`` events of each split are used
(a random subset with a fixed seed), the ranking on ``ranking_events`` of them; the
report says how many (``events``, ``ranking.events``).

:func:`build_report` computes the report from arrays, :func:`write_report` draws its
plots and writes it, :func:`load_report` reads one back as a validated
:class:`~mlaas_jupyter.specs.report.Report`. A finished training run calls
:func:`._report_run.report_for_run`, which scores the splits and calls these.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SourceError, SpecError
from ..specs.report import REPORT_FORMAT, Report, ReportSettings
from ..stream.layout import FeatureLayout
from ._report_plots import save_report_plots
from ._report_ranking import native_importance, permutation_ranking, variables_of
from ._report_stats import (
    density_histograms,
    efficiencies,
    regression_summary,
    score_edges,
    weighted_correlations,
    weighted_ks,
)
from .physics import signal_scores, weighted_auc, weighted_roc

__all__ = [
    "REPORT_FILE",
    "build_report",
    "load_report",
    "native_importance",
    "write_report",
]

Array = np.ndarray[Any, Any]
#: the report's file name in a run folder (and in a bundle)
REPORT_FILE = "report.json"
_ROC_POINTS = 200


def subsample(n: int, cap: int, seed: int) -> Array | None:
    """Indices of a random subset of ``cap`` of ``n`` events (sorted), None for all."""
    if n <= cap:
        return None
    chosen: Array = np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))
    return chosen


def _take(arrays: Sequence[Array | None], index: Array | None) -> list[Any]:
    return [a if a is None or index is None else np.asarray(a)[index] for a in arrays]


def _short(values: Array) -> list[float]:
    """Histogram contents and edges with 7 significant digits (a shorter report.json)."""
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64)]


def _groups(task: str, labels: Sequence[str], y: Array) -> dict[str, Array]:
    """Each class's events (a boolean mask); regression: one pseudo-class ``all``."""
    if task == "regression":
        return {"all": np.ones(len(y), dtype=bool)}
    index = np.asarray(y).astype(np.int64)
    return {name: index == k for k, name in enumerate(labels)}


def _score(task: str, y: Array, scores: Array) -> Array:
    if task == "regression":
        return np.ravel(scores).astype(np.float64)
    return signal_scores(task, y, scores)[1]


def _overtraining(
    task: str,
    labels: Sequence[str],
    test: tuple[Array, Array, Array],
    train: tuple[Array, Array, Array],
    threshold: float,
) -> dict[str, Any]:
    score_test, score_train = _score(task, *test[::2]), _score(task, *train[::2])
    edges = score_edges(score_test, score_train)
    groups_test, groups_train = _groups(task, labels, test[0]), _groups(task, labels, train[0])
    classes: dict[str, Any] = {}
    for name, chosen in groups_test.items():
        other = groups_train[name]
        d, p = weighted_ks(score_train[other], train[1][other], score_test[chosen], test[1][chosen])
        classes[name] = {
            "train": _short(density_histograms(score_train[other], train[1][other], edges)),
            "test": _short(density_histograms(score_test[chosen], test[1][chosen], edges)),
            "ks_statistic": d,
            "ks_pvalue": p,
            "flagged": p is not None and p < threshold,
        }
    label = "prediction" if task == "regression" else f"P({labels[-1]})"
    return {
        "threshold": threshold,
        "edges": _short(edges),
        "score": label,
        "classes": classes,
        "flagged": [name for name, entry in classes.items() if entry["flagged"]],
    }


def _correlations(
    task: str, labels: Sequence[str], x: Array, y: Array, w: Array, layout: FeatureLayout | None
) -> dict[str, Any]:
    variables = variables_of(layout, x.shape[1])
    masks = [c for _, kind, _, names in variables if kind == "mask" for c in names]
    columns = [(i, c) for _, kind, cols, names in variables if kind != "mask"
               for i, c in zip(cols, names, strict=True)]  # fmt: skip
    index = [i for i, _ in columns]
    names = [c for _, c in columns]
    groups = {k: v for k, v in _groups(task, labels, y).items() if v.any()}
    varying = set(names)
    for chosen in groups.values():
        used, _, _ = weighted_correlations(x[chosen][:, index], w[chosen], names)
        varying &= set(used)
    kept = [k for k, name in enumerate(names) if name in varying]
    common = [names[k] for k in kept]
    matrices = {
        name: weighted_correlations(x[chosen][:, [index[k] for k in kept]], w[chosen], common)[2]
        for name, chosen in groups.items()
    }
    return {
        "variables": common,
        "constant": [n for n in names if n not in varying],
        "masks": masks,
        "classes": {name: np.round(m, 5).tolist() for name, m in matrices.items()},
    }


def _roc_curve(signal: Array, score: Array, w: Array) -> dict[str, Any] | None:
    try:
        eff_s, eff_b, _ = weighted_roc(signal, score, w)
    except ValueError:
        return None
    keep = np.unique(np.linspace(0, len(eff_s) - 1, min(_ROC_POINTS, len(eff_s))).astype(int))
    return {
        "fpr": eff_b[keep].round(6).tolist(),
        "tpr": eff_s[keep].round(6).tolist(),
        "auc": weighted_auc(signal, score, w),
    }


def build_report(
    task: str,
    labels: Sequence[str],
    y: Array,
    w: Array,
    scores: Array,
    *,
    x: Array | None = None,
    train: tuple[Array, Array, Array] | None = None,
    layout: FeatureLayout | None = None,
    predict: Callable[[Array], Array] | None = None,
    native: list[dict[str, Any]] | None = None,
    split: str = "test",
    settings: ReportSettings | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The report (a JSON-ready dict of the :class:`Report` shape, ``plots`` empty).

    Parameters
    ----------
    task, labels
        The dataset's task and class names (the last class is the signal).
    y, w, scores
        Labels (regression: targets), weights and model outputs of the report's split.
    x
        Its input matrix (rows of ``y``): correlations and, with ``predict``, the ranking.
    train
        (y, w, scores) of training events: the overtraining check.
    layout
        The matrix's features (names, kinds, columns); None: one flat ``x[i]`` per column.
    predict
        The model, matrix to scores: permutation importance.
    native
        The model's own importance per variable (:func:`native_importance`).
    """
    settings = settings or ReportSettings()
    classification = task != "regression"
    w = np.asarray(w, dtype=np.float64)
    cap, notes = settings.max_events, []
    if len(y) > cap:
        notes.append(f"{split}: {cap} of {len(y)} events used (training.report.max_events)")
    y, w, scores, x = _take((y, w, scores, x), subsample(len(y), cap, seed))
    if train is not None:
        if len(train[0]) > cap:
            notes.append(f"train: {cap} of {len(train[0])} events used")
        index = subsample(len(train[0]), cap, seed + 1)
        train = (*_take((train[0], np.asarray(train[1], np.float64), train[2]), index),)
    report: dict[str, Any] = {
        "report_format": REPORT_FORMAT,
        "task": task,
        "classes": list(labels) if classification else [],
        "signal": labels[-1] if classification else None,
        "split": split,
        "events": {"train": len(train[0]) if train is not None else 0, "test": len(y)},
        "overtraining": None,
        "ranking": None,
        "correlations": None,
        "efficiencies": None,
        "confusion": None,
        "one_vs_rest": None,
        "regression": None,
        "folds": None,
        "plots": {},
        "notes": notes,
    }
    if train is not None and len(train[0]) and len(y):
        report["overtraining"] = _overtraining(
            task, labels, (y, w, scores), train, settings.ks_threshold
        )
    if x is not None and len(y):
        x = np.asarray(x)
        report["correlations"] = _correlations(task, labels, x, y, w, layout)
        if predict is not None:
            pick = subsample(len(y), settings.ranking_events, seed + 2)
            xr, yr, wr = _take((x, y, w), pick)
            variables = variables_of(layout, x.shape[1])
            ranking = permutation_ranking(
                predict, task, xr, yr, wr, variables, repeats=settings.repeats, seed=seed
            )
            report["ranking"] = {**ranking, "native": native}
    if classification and len(y):
        signal, score = signal_scores(task, y, scores)
        report["efficiencies"] = {**efficiencies(signal, score, w),
                                  "roc": _roc_curve(signal, score, w)}  # fmt: skip
    if task == "multiclass" and len(y):
        from ._report_stats import confusion

        matrix, normalised = confusion(y, np.argmax(scores, axis=1), w, len(labels))
        report["confusion"] = {"classes": list(labels), "matrix": matrix,
                               "normalised": normalised}  # fmt: skip
        index = np.asarray(y).astype(np.int64)
        curves = {name: _roc_curve(index == k, scores[:, k].astype(np.float64), w)
                  for k, name in enumerate(labels)}  # fmt: skip
        report["one_vs_rest"] = {k: v for k, v in curves.items() if v is not None}
    if task == "regression":
        report["regression"] = summary = regression_summary(y, scores, w)
        summary["residuals"] = {k: _short(v) for k, v in summary["residuals"].items()}
    cleaned: dict[str, Any] = _clean(report)
    return cleaned


def _clean(value: Any) -> Any:
    """JSON-ready: NumPy numbers as Python ones, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def write_report(folder: str | Path, report: dict[str, Any], *, style: str | None = None) -> Path:
    """Draw the plots of ``report`` into ``folder/plots``, record them in its ``plots``
    and write ``folder/report.json`` (validated against :class:`Report` first)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    report = {**report, "plots": {**report.get("plots", {}),
                                  **save_report_plots(folder, report, style)}}  # fmt: skip
    Report.parse(report)  # the agreed shape, or a SpecError naming the field
    path = folder / REPORT_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(report, indent=1, allow_nan=False))
    partial.replace(path)
    return path


def load_report(path: str | Path) -> Report:
    """The validated report of ``path`` (a ``report.json``, or a run or bundle folder
    holding one); :class:`SourceError` naming the file when it is missing or broken."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(str(path), "no training report here (report.json is written "
                          "when a training run finishes)") from None  # fmt: skip
    except (OSError, UnicodeDecodeError) as err:
        raise SourceError(str(path), f"cannot read the training report: {err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SourceError(str(path), f"the training report is not valid JSON: {err}") from None
    if isinstance(data, dict) and data.get("report_format") != REPORT_FORMAT:
        raise SourceError(
            str(path),
            f"report_format {data.get('report_format')!r} is not supported "
            f"(this version reads {REPORT_FORMAT})",
        )
    try:
        return Report.parse(data)
    except SpecError as err:
        raise SourceError(str(path), f"not a valid training report: {err}") from None
