"""PNG plots of a training run: loss curves, ROC curves, background rejection, scores;
the monitor's curves (losses and metrics on separate axes) and a sweep's scatter of each
parameter against its metric.

Figures are :class:`matplotlib.figure.Figure` objects on an Agg canvas, not pyplot's:
they need no backend switch (servers and kernels have no display, and a notebook's
inline backend stays as the user set it), keep no global state and need no closing.
An experiment style applies only inside :func:`styled`, so the process's rcParams are
the same after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._curves import curve_series, curves_figure
from ._hep_plots import EXPERIMENTS, draw_rejection, draw_yields, experiment_label, mplhep
from ._sweep_plots import sweep_figure, sweep_rows

__all__ = [
    "curve_series",
    "curves_figure",
    "draw_fractions",
    "draw_loss",
    "draw_roc",
    "new_figure",
    "save_plots",
    "styled",
    "sweep_figure",
    "sweep_rows",
]

#: Width in pixels of a plot with an experiment style (styles size figures in inches
#: for print: 10 x 10 for CMS); plain plots are 550 x 420.
_STYLED_WIDTH = 600


@contextmanager
def styled(style: str | None) -> Iterator[None]:
    """The rcParams of ``mplhep``'s style ``style`` (``CMS``, ``ATLAS``, ``LHCb``,
    ``ALICE``; None: matplotlib's current ones) for what is drawn and saved inside,
    restored on leaving."""
    import matplotlib
    import matplotlib.style

    if style is None:
        with matplotlib.rc_context():
            yield
        return
    if style not in EXPERIMENTS:
        raise ValueError(f"style: no experiment style {style!r}; choose one of {EXPERIMENTS}")
    with matplotlib.style.context(getattr(mplhep().style, style)):
        yield


def new_figure(style: str | None = None) -> tuple[Any, Any]:
    """A figure with one axes, sized for the screen (call inside :func:`styled`)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if style is None:
        figure = Figure(figsize=(5.5, 4.2), dpi=100)
    else:
        figure = Figure(dpi=_STYLED_WIDTH / matplotlib.rcParams["figure.figsize"][0])
    FigureCanvasAgg(figure)  # a renderer for labels that measure text before saving
    return figure, figure.subplots()


def draw_loss(ax: Any, history: list[dict[str, Any]]) -> None:
    """Training (and validation) loss per epoch."""
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["loss"] for h in history], marker="o", label="training")
    if any(h.get("val_loss") is not None for h in history):
        ax.plot(epochs, [h.get("val_loss") for h in history], marker="s", label="validation")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        ax.set_xticks(epochs)  # one epoch (a BDT): no fractional epochs around it
    ax.set_ylabel("loss")
    ax.legend()


def draw_roc(ax: Any, roc: dict[str, Any]) -> None:
    """True against false positive rate, one curve per class."""
    for name, curve in roc.get("curves", {}).items():
        auc = curve.get("auc")
        label = f"{name} (AUC {auc:.3f})" if auc is not None else name
        ax.plot(curve["fpr"], curve["tpr"], label=label)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")


def draw_fractions(ax: Any, scores: dict[str, Any]) -> None:
    """Score distributions per class normalised to unit area (no yields known)."""
    edges = scores["edges"]
    for name, values in scores["classes"].items():
        ax.stairs(values, edges, label=name)
    ax.set_xlabel(scores.get("title", "score"))
    ax.set_ylabel("fraction of events")
    ax.legend()


def save_plots(
    directory: Path,
    history: list[dict[str, Any]],
    roc: dict[str, Any],
    scores: dict[str, Any],
    *,
    rejection: dict[str, Any] | None = None,
    yields: dict[str, Any] | None = None,
    style: str | None = None,
    luminosity: float | None = None,
) -> list[str]:
    """Write ``loss.png``, ``roc.png``, ``rejection.png`` and ``scores.png`` (those that
    have data) in the experiment ``style``, the physics plots labelled as simulation
    for ``luminosity`` (pb^-1). ``scores.png`` shows ``yields`` when given, else the
    unit-area ``scores``."""
    directory.mkdir(parents=True, exist_ok=True)
    plots: list[tuple[str, Any, bool]] = []
    if history:
        plots.append(("loss.png", lambda ax: draw_loss(ax, history), False))
    if any(c["fpr"] for c in roc.get("curves", {}).values()):
        plots.append(("roc.png", lambda ax: draw_roc(ax, roc), True))
    if rejection and rejection.get("signal_efficiency"):
        plots.append(("rejection.png", lambda ax: draw_rejection(ax, rejection), True))
    if yields and yields.get("classes"):
        plots.append(("scores.png", lambda ax: draw_yields(ax, yields), True))
    elif scores.get("classes"):
        plots.append(("scores.png", lambda ax: draw_fractions(ax, scores), True))
    with styled(style):
        for name, draw, labelled in plots:
            figure, ax = new_figure(style)
            draw(ax)
            if labelled:
                experiment_label(ax, style, luminosity)
            figure.tight_layout()
            figure.savefig(directory / name)
    return [name for name, _, _ in plots]
