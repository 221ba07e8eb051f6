"""The figure of a comparison: several runs' curves overlaid, one colour per run.

Six panels: the ROC curve (true against false positive rate), the background
rejection ``1/ε_b`` (log axis) against the signal efficiency, the score distributions
(one colour per run, one line style per class), the training and validation loss per
epoch, the validation metric per epoch (``val_auc`` for classifiers) on its own axis,
and the test metrics with what the figure could not draw. A panel that no run has
data for says so instead of staying blank; a run lacking one curve is named in the
notes. Figures are Agg figures, as in :mod:`.plots`: no pyplot, no global state.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import SpecError
from .comparison import missing_notes

__all__ = ["FORMATS", "comparison_image", "draw_comparison"]

#: the file formats of :func:`comparison_image` (by suffix of a saved file)
FORMATS = ("png", "pdf", "svg")
#: one line style per class of a score distribution: signal solid, backgrounds after
_CLASS_STYLES = ("-", "--", ":", "-.")
#: at most this many metrics in the figure's table (all of them are in the JSON)
_TABLE_ROWS = 8
#: characters of a line of the notes under the table (the rest: in the JSON and tables)
_TEXT_WIDTH = 84
Run = Mapping[str, Any]


def _colour(k: int) -> str:
    return f"C{k % 10}"


def _signal_curve(run: Run) -> tuple[str, dict[str, Any]] | None:
    """The signal's ROC curve of a run: the only curve of a binary classifier, the last
    class's of a multi-class one (the signal of the physics metrics)."""
    curves = ((run.get("roc") or {}).get("curves")) or {}
    curves = {k: v for k, v in curves.items() if v and v.get("fpr")}
    if not curves:
        return None
    signal = (run.get("rejection") or {}).get("signal")
    name = signal if signal in curves else list(curves)[-1]
    return str(name), curves[name]


def _rejection(run: Run) -> tuple[list[float], list[float]] | None:
    """Signal efficiency and background rejection: the weighted curve of the run's
    physics metrics, else 1/FPR of its ROC curve where the FPR is not zero."""
    rejection = run.get("rejection") or {}
    if rejection.get("signal_efficiency"):
        points = [
            (e, r)
            for e, r in zip(
                rejection["signal_efficiency"], rejection["background_rejection"], strict=False
            )
            if r is not None
        ]
        return [e for e, _ in points], [r for _, r in points]
    found = _signal_curve(run)
    if found is None:
        return None
    curve = found[1]
    pairs = [(t, 1.0 / f) for f, t in zip(curve["fpr"], curve["tpr"], strict=False) if f > 0]
    return ([t for t, _ in pairs], [r for _, r in pairs]) if pairs else None


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_roc(ax: Any, runs: Sequence[Run]) -> None:
    found = [_signal_curve(run) for run in runs]
    for k, (run, item) in enumerate(zip(runs, found, strict=True)):
        if item is None:
            continue
        auc = item[1].get("auc")
        label = f"{run['label']} (AUC {auc:.3f})" if isinstance(auc, float) else run["label"]
        ax.plot(item[1]["fpr"], item[1]["tpr"], color=_colour(k), label=label)
    if not any(found):
        _empty(ax, "no ROC curves\n(regression runs, or runs without curves.json)")
        return
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC")
    ax.legend(loc="lower right", fontsize="small")


def _draw_rejection(ax: Any, runs: Sequence[Run]) -> None:
    curves = [_rejection(run) for run in runs]
    for k, (run, curve) in enumerate(zip(runs, curves, strict=True)):
        if curve is not None:
            ax.plot(curve[0], curve[1], color=_colour(k), label=run["label"])
    if not any(curves):
        _empty(ax, "no background rejection\n(no ROC curves)")
        return
    ax.set_yscale("log")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("signal efficiency $\\varepsilon_s$")
    ax.set_ylabel("background rejection $1/\\varepsilon_b$")
    ax.set_title("background rejection")
    ax.legend(loc="upper right", fontsize="small")


def _draw_scores(ax: Any, runs: Sequence[Run]) -> None:
    have = [bool((run.get("scores") or {}).get("classes")) for run in runs]
    titles = []
    for k, (run, has) in enumerate(zip(runs, have, strict=True)):
        if not has:
            continue
        scores = run["scores"]
        titles.append(str(scores.get("title", "score")))
        classes = list(scores["classes"].items())
        for j, (name, values) in enumerate(reversed(classes)):  # the signal (last) first
            style = _CLASS_STYLES[j % len(_CLASS_STYLES)]
            ax.stairs(
                values, scores["edges"], color=_colour(k), ls=style, label=f"{run['label']}: {name}"
            )
    if not any(have):
        _empty(ax, "no score distributions\n(regression runs, or runs without curves.json)")
        return
    ax.set_xlabel(titles[0] if len(set(titles)) == 1 else "signal score")
    ax.set_ylabel("fraction of events")
    ax.set_title("scores (solid: signal)")
    ax.legend(fontsize="x-small", ncol=1 + (len(runs) > 3))


def _draw_loss(ax: Any, runs: Sequence[Run]) -> None:
    from matplotlib.ticker import MaxNLocator

    drawn = False
    for k, run in enumerate(runs):
        history = [h for h in run.get("history") or [] if h.get("loss") is not None]
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        ax.plot(
            epochs, [h["loss"] for h in history], color=_colour(k), marker=".", label=run["label"]
        )
        validation = [(h["epoch"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
        if validation:
            ax.plot(*zip(*validation, strict=True), color=_colour(k), ls="--", marker=".")
        drawn = True
    if not drawn:
        _empty(ax, "no loss curves\n(no epoch history)")
        return
    ax.plot([], [], color="grey", label="training")
    ax.plot([], [], color="grey", ls="--", label="validation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    ax.legend(fontsize="small")


def validation_metric(runs: Sequence[Run]) -> str | None:
    """The validation metric drawn per epoch: ``val_auc`` when a run has it, else the
    first other ``val_*`` metric but the loss (accuracy, R², ...)."""
    names = [
        k for run in runs for h in run.get("history") or [] for k, v in h.items() if v is not None
    ]
    if "val_auc" in names:
        return "val_auc"
    return next((n for n in names if n.startswith("val_") and n != "val_loss"), None)


def _draw_validation(ax: Any, runs: Sequence[Run]) -> None:
    from matplotlib.ticker import MaxNLocator

    metric = validation_metric(runs)
    if metric is None:
        _empty(ax, "no validation metric\n(no epoch history)")
        return
    for k, run in enumerate(runs):
        points = [
            (h["epoch"], h[metric]) for h in run.get("history") or [] if h.get(metric) is not None
        ]
        if points:
            ax.plot(*zip(*points, strict=True), color=_colour(k), marker="o", label=run["label"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"validation {metric.removeprefix('val_')}")
    ax.legend(fontsize="small")


def _format(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _draw_table(ax: Any, comparison: Mapping[str, Any], notes: list[str]) -> None:
    ax.axis("off")
    runs = comparison["runs"]
    names = list(comparison.get("metrics") or [])[:_TABLE_ROWS]
    if names:
        cells = [[_format((run.get("metrics") or {}).get(n)) for run in runs] for n in names]
        table = ax.table(
            cellText=cells,
            rowLabels=names,
            colLabels=[_short(str(run["label"])) for run in runs],
            colColours=[_colour(k) for k in range(len(runs))],
            loc="upper center",
            cellLoc="right",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
    else:
        notes.insert(0, "no test metrics recorded")
    differences = comparison.get("differences") or []
    lines = [
        f"{d['field']}: " + " | ".join(d.get("text") or map(str, d["values"]))
        for d in differences[:_TABLE_ROWS]
    ]
    lines = [
        line if len(line) <= _TEXT_WIDTH else line[: _TEXT_WIDTH - 1] + "\u2026" for line in lines
    ]
    if len(differences) > _TABLE_ROWS:
        lines.append(f"... and {len(differences) - _TABLE_ROWS} more differences")
    if not differences:
        lines.append("the specs do not differ")
    text = "\n".join(["spec differences:", *lines, *notes])
    # from under the table's row labels, which stand left of the axes
    ax.text(-0.3, 0.0, text, fontsize=7, va="bottom", family="monospace", transform=ax.transAxes)


def _short(text: str, width: int = 20) -> str:
    """``text``, or its end when long (run names differ in their end: the time)."""
    return text if len(text) <= width else "\u2026" + text[1 - width :]


def draw_comparison(comparison: Mapping[str, Any]) -> Any:
    """The comparison figure (a :class:`matplotlib.figure.Figure` on an Agg canvas)
    of :func:`~mlaas_jupyter.train.comparison.compare_runs`'s result."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = comparison["runs"]
    figure = Figure(figsize=(16.0, 9.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 3)
    notes = missing_notes(runs)
    _draw_roc(axes[0][0], runs)
    _draw_rejection(axes[0][1], runs)
    _draw_scores(axes[0][2], runs)
    _draw_loss(axes[1][0], runs)
    _draw_validation(axes[1][1], runs)
    _draw_table(axes[1][2], comparison, notes)
    figure.suptitle("comparison of " + ", ".join(str(run["label"]) for run in runs))
    figure.tight_layout()
    return figure


def comparison_image(comparison: Mapping[str, Any], fmt: str = "png") -> bytes:
    """The comparison figure as a PNG, PDF or SVG file's bytes."""
    if fmt not in FORMATS:
        raise SpecError("format", f"got {fmt!r}; allowed: {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    draw_comparison(comparison).savefig(buffer, format=fmt)
    return buffer.getvalue()
