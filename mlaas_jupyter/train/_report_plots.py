"""The PNG plots of the training report, drawn from the report's own data.

:func:`save_report_plots` writes into ``RUN_DIR/plots``:

* ``report_overtraining.png``: train (filled) against test (points) score densities per
  class, with each class's KS p-value;
* ``report_ranking.png``: the permutation importance of the variables (bars with their
  standard deviation), and the BDT's share of split gains beside them when known;
* ``report_correlations_<class>.png``: the weighted correlation matrix of each class;
* ``report_roc.png``: the ROC (signal against the rest) with the efficiencies marked;
* multi-class: ``report_confusion.png`` (row fractions) and ``report_one_vs_rest.png``;
* regression: ``report_residuals.png`` and ``report_regression.png`` (bias and
  resolution against the true target).

Figures are Agg-canvas figures (:func:`.plots.new_figure`), in the experiment style when
one is given. Returns ``{plot name: path relative to RUN_DIR}`` (the report's ``plots``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .plots import new_figure, styled

__all__ = ["plot_file", "save_report_plots"]

#: at most this many rows in the ranking bar chart
_RANKED = 30


def plot_file(name: str) -> str:
    """The file name of a report plot: ``report_<name>.png`` with a safe name."""
    return "report_" + re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png"


def _overtraining(ax: Any, section: dict[str, Any]) -> None:
    edges = np.asarray(section["edges"])
    centres = (edges[1:] + edges[:-1]) / 2
    colours = [f"C{k}" for k in range(10)]
    for k, (name, entry) in enumerate(section["classes"].items()):
        colour = colours[k % len(colours)]
        ax.stairs(entry["train"], edges, fill=True, alpha=0.3, color=colour,
                  label=f"{name} (train)")  # fmt: skip
        p = entry["ks_pvalue"]
        text = f"{name} (test, KS p = {p:.3g})" if p is not None else f"{name} (test)"
        ax.plot(centres, entry["test"], "o", ms=3, color=colour, label=text)
    ax.set_xlabel(section.get("score") or "score")
    ax.set_ylabel("density")
    flagged = section.get("flagged") or []
    title = f"overtraining: {', '.join(flagged)}" if flagged else "no overtraining flagged"
    ax.set_title(f"{title} (p < {section['threshold']:g})", fontsize="small")
    ax.legend(fontsize="x-small")


def _ranking(ax: Any, section: dict[str, Any]) -> None:
    rows = [v for v in section["variables"] if v["importance"] is not None][:_RANKED]
    names = [v["name"] for v in rows][::-1]
    values = [v["importance"] for v in rows][::-1]
    errors = [v["std"] or 0.0 for v in rows][::-1]
    positions = np.arange(len(rows))
    native = {n["name"]: n["importance"] for n in section.get("native") or []}
    height = 0.4 if native else 0.8
    ax.barh(positions + (height / 2 if native else 0), values, height=height, xerr=errors,
            label=f"permutation (loss of {section['metric'].upper()})")  # fmt: skip
    if native:
        ax.barh(positions - height / 2, [native.get(n, 0.0) for n in names], height=height,
                label="BDT split gain (share)")  # fmt: skip
        ax.legend(fontsize="x-small")
    ax.set_yticks(positions, names, fontsize="x-small" if len(rows) > 12 else "small")
    ax.set_xlabel(f"importance (loss of {section['metric'].upper()} when permuted)")
    baseline = section.get("baseline")
    if baseline is not None:
        ax.set_title(f"variable ranking ({section['metric'].upper()} {baseline:.3f})",
                     fontsize="small")  # fmt: skip


def _correlations(
    figure: Any, ax: Any, names: list[str], matrix: list[list[float]], title: str
) -> None:
    image = ax.imshow(np.asarray(matrix), vmin=-1.0, vmax=1.0, cmap="RdBu_r")
    ax.set_title(f"weighted correlations of the inputs: {title}", fontsize="small")
    figure.colorbar(image, ax=ax, label="correlation")
    small = "xx-small" if len(names) > 15 else "small"
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=small)
    ax.set_yticks(range(len(names)), names, fontsize=small)
    if len(names) <= 10:
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize="x-small")


def _roc(ax: Any, section: dict[str, Any], signal: str | None) -> None:
    roc = section.get("roc") or {}
    auc = section.get("roc_integral")
    label = f"{signal} vs rest" + (f" (AUC {auc:.3f})" if auc is not None else "")
    ax.plot(roc.get("fpr", []), roc.get("tpr", []), label=label)
    for key, value in section["signal_at_background"].items():
        if value is not None:
            ax.plot([float(key)], [value], "o", ms=4, label=f"εS = {value:.3f} at εB = {key}")
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("background efficiency")
    ax.set_ylabel("signal efficiency")
    separation = section.get("separation")
    if separation is not None:
        ax.set_title(f"separation <S²> = {separation:.3f}", fontsize="small")
    ax.legend(fontsize="x-small", loc="lower right")


def _confusion(figure: Any, ax: Any, section: dict[str, Any]) -> None:
    names = section["classes"]
    rows = np.asarray([[v if v is not None else 0.0 for v in r] for r in section["normalised"]])
    image = ax.imshow(rows, vmin=0.0, vmax=1.0, cmap="Blues")
    figure.colorbar(image, ax=ax, label="fraction of the true class")
    ax.set_xticks(range(len(names)), names, rotation=45)
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            colour = "white" if rows[i, j] > 0.5 else "black"
            ax.text(j, i, f"{rows[i, j]:.2f}", ha="center", va="center", color=colour)
    ax.set_xlabel("predicted (argmax)")
    ax.set_ylabel("true")


def _one_vs_rest(ax: Any, curves: dict[str, Any]) -> None:
    for name, curve in curves.items():
        auc = curve.get("auc")
        ax.plot(curve["fpr"], curve["tpr"], label=f"{name}" + (f" (AUC {auc:.3f})" if auc else ""))
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize="small", loc="lower right")


def _residuals(ax: Any, section: dict[str, Any]) -> None:
    residuals = section["residuals"]
    ax.stairs(residuals["counts"], residuals["edges"], fill=True, alpha=0.5)
    ax.set_xlabel("prediction - target")
    ax.set_ylabel("events (weighted)")
    if section.get("mean") is not None:
        ax.set_title(f"mean {section['mean']:.3g}, std {section['std']:.3g}, "
                     f"R² {section.get('r2') or 0:.3f}", fontsize="small")  # fmt: skip


def _resolution(ax: Any, section: dict[str, Any]) -> None:
    bins = section["binned"]
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    widths = [(b["high"] - b["low"]) / 2 for b in bins]
    ax.errorbar(centres, [b["bias"] for b in bins], xerr=widths, fmt="o", label="bias (median)")
    ax.errorbar(centres, [b["resolution"] for b in bins], xerr=widths, fmt="s",
                label="resolution (half 16-84% width)")  # fmt: skip
    ax.axhline(0.0, ls=":", color="grey")
    ax.set_xlabel("true target")
    ax.set_ylabel("residual")
    ax.legend(fontsize="small")


def save_report_plots(
    run_dir: Path, report: dict[str, Any], style: str | None = None
) -> dict[str, str]:
    """Draw the report's plots into ``run_dir/plots``; ``{name: relative path}``."""
    folder = run_dir / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, Callable[[Any, Any], None]]] = []
    rows: dict[str, int] = {}  # labelled rows of a plot: bigger figures for many
    over = report.get("overtraining")
    if over and over["classes"]:
        jobs.append(("overtraining", lambda f, ax: _overtraining(ax, over)))
    ranking = report.get("ranking")
    if ranking and any(v["importance"] is not None for v in ranking["variables"]):
        jobs.append(("ranking", lambda f, ax: _ranking(ax, ranking)))
        rows["ranking"] = min(_RANKED, len(ranking["variables"]))
    correlations = report.get("correlations")
    if correlations and correlations["variables"]:
        for name, matrix in correlations["classes"].items():
            draw = _bind_correlations(correlations["variables"], matrix, name)
            jobs.append((f"correlations_{name}", draw))
            rows[f"correlations_{name}"] = len(correlations["variables"])
    efficiencies = report.get("efficiencies")
    if efficiencies and (efficiencies.get("roc") or {}).get("fpr"):
        jobs.append(("roc", lambda f, ax: _roc(ax, efficiencies, report.get("signal"))))
    if report.get("confusion"):
        jobs.append(("confusion", lambda f, ax: _confusion(f, ax, report["confusion"])))
    if report.get("one_vs_rest"):
        jobs.append(("one_vs_rest", lambda f, ax: _one_vs_rest(ax, report["one_vs_rest"])))
    regression = report.get("regression")
    if regression and regression["residuals"]["counts"]:
        jobs.append(("residuals", lambda f, ax: _residuals(ax, regression)))
        if regression["binned"]:
            jobs.append(("regression", lambda f, ax: _resolution(ax, regression)))
    written: dict[str, str] = {}
    with styled(style):
        for name, draw in jobs:
            figure, ax = new_figure(style)
            scale = min(3.0, max(1.0, rows.get(name, 0) / 12))
            if scale > 1.0:
                figure.set_size_inches(figure.get_size_inches() * scale)
            draw(figure, ax)
            figure.tight_layout()
            file = plot_file(name)
            figure.savefig(folder / file)
            written[name] = f"plots/{file}"
    return written


def _bind_correlations(
    names: list[str], matrix: list[list[float]], title: str
) -> Callable[[Any, Any], None]:
    return lambda figure, ax: _correlations(figure, ax, names, matrix, title)
