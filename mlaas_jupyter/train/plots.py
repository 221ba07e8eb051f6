"""PNG plots of a training run: loss curves, ROC curve, score distributions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["save_plots"]


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and kernels
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 4.2), dpi=100)
    return figure, axes


def save_plots(
    directory: Path, history: list[dict[str, Any]], roc: dict[str, Any], scores: dict[str, Any]
) -> list[str]:
    """Write ``loss.png``, ``roc.png`` and ``scores.png`` (those that have data)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if history:
        fig, ax = _figure()
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["loss"] for h in history], marker="o", label="training")
        if any(h.get("val_loss") is not None for h in history):
            ax.plot(epochs, [h.get("val_loss") for h in history], marker="s", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss")
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / "loss.png")
        plt.close(fig)
        written.append("loss.png")
    curves = roc.get("curves", {})
    if any(c["fpr"] for c in curves.values()):
        fig, ax = _figure()
        for name, curve in curves.items():
            auc = curve.get("auc")
            label = f"{name} (AUC {auc:.3f})" if auc is not None else name
            ax.plot(curve["fpr"], curve["tpr"], label=label)
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(directory / "roc.png")
        plt.close(fig)
        written.append("roc.png")
    if scores.get("classes"):
        fig, ax = _figure()
        edges = scores["edges"]
        for name, values in scores["classes"].items():
            ax.stairs(values, edges, label=name)
        ax.set_xlabel(scores.get("title", "score"))
        ax.set_ylabel("fraction of events")
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / "scores.png")
        plt.close(fig)
        written.append("scores.png")
    return written
