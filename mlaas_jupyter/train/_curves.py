"""The per-epoch curves of a run, read at a glance: losses and metrics on separate axes.

A loss (binary cross-entropy, MSE...) and a metric (AUC, accuracy, R²) live on different
scales: on one axis a falling loss of 0.6 flattens an AUC rising from 0.90 to 0.93. So
the losses (every series whose name ends in ``loss``) get one axes and the metrics
(``val_auc``, ``val_accuracy``, ``val_r2``...) another, side by side over the same
epochs. The training monitor draws the same split (its front-end reads
:func:`curve_series`); :func:`curves_figure` is the Agg figure of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["curve_series", "curves_figure", "draw_series"]

#: Per-epoch numbers that are bookkeeping, not curves (counts, rates, durations).
_NOT_CURVES = frozenset(
    {"epoch", "epochs", "events", "events_per_s", "seconds", "batch", "batches", "val_events"}
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _order(name: str) -> tuple[str, bool]:
    """Training before validation, then by name: loss, val_loss, val_accuracy, val_auc."""
    validation = name.startswith("val_")
    return (name[4:] if validation else name, validation)


def curve_series(history: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The names of the per-epoch curves in ``history`` (epoch records), as
    ``{"loss": [...], "metrics": [...]}``: losses apart from metrics, each list
    training before validation, then by name. A series appears when at least one epoch
    has a number for it (a run without a validation split has only ``loss``)."""
    names = {
        key
        for record in history
        for key, value in record.items()
        if key not in _NOT_CURVES and _is_number(value)
    }
    losses = sorted((n for n in names if n.endswith("loss")), key=_order)
    metrics = sorted((n for n in names if not n.endswith("loss")), key=_order)
    return {"loss": losses, "metrics": metrics}


def draw_series(
    ax: Any, history: Sequence[Mapping[str, Any]], names: Sequence[str], ylabel: str
) -> None:
    """One line per name of ``names`` against the epoch (epochs without a number for it
    are skipped), labelled by the name."""
    from matplotlib.ticker import MaxNLocator

    markers = "osD^v<>"
    for index, name in enumerate(names):
        points = [(h["epoch"], h[name]) for h in history if _is_number(h.get(name))]
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            marker=markers[index % len(markers)],
            label=name,
        )
    epochs = sorted({h["epoch"] for h in history if _is_number(h.get("epoch"))})
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        ax.set_xticks(epochs)  # one epoch (a BDT): no fractional epochs around it
    ax.set_ylabel(ylabel)
    if names:
        ax.legend()


def curves_figure(history: Sequence[Mapping[str, Any]]) -> Any:
    """A :class:`~matplotlib.figure.Figure` (Agg canvas) of ``history``: the losses on
    the left axes labelled ``loss``, the metrics on the right axes labelled ``metric``;
    one axes only when the run has no metric (no validation split)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = curve_series(history)
    panels = [("loss", series["loss"])]
    if series["metrics"]:
        panels.append(("metric", series["metrics"]))
    figure = Figure(figsize=(4.6 * len(panels), 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, names) in zip(axes, panels, strict=True):
        draw_series(ax, history, names, label)
    figure.tight_layout()
    return figure
