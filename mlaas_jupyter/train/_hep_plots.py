"""The field's plots, drawn with ``mplhep`` on given axes: background rejection against
signal efficiency, score distributions in expected events with the backgrounds
stacked, and the experiment label ("CMS Simulation", the luminosity).

Each ``draw_*`` function takes the axes and the data of ``plots/curves.json`` and
returns what it drew, so tests can inspect a figure before it is saved.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

__all__ = [
    "EXPERIMENTS",
    "draw_rejection",
    "draw_yields",
    "experiment_label",
    "lumi_text",
    "mplhep",
    "signal_scale",
]

#: Experiment styles of ``mplhep``, by the name a spec gives.
EXPERIMENTS = ("CMS", "ATLAS", "LHCb", "ALICE")


def mplhep() -> Any:
    """The ``mplhep`` module (untyped), imported when a plot is drawn."""
    return importlib.import_module("mplhep")


def lumi_text(luminosity: float) -> str:
    """``138 fb$^{-1}$`` for ``luminosity`` in pb^-1 (plots speak fb^-1)."""
    fb = luminosity / 1000.0
    number = f"{fb:.0f}" if fb >= 100 else f"{fb:.3g}"
    return f"{number} fb$^{{-1}}$"


def experiment_label(ax: Any, style: str | None, luminosity: float | None) -> list[Any]:
    """Label ``ax`` as simulation of the experiment ``style`` (``mplhep``'s label), with
    the luminosity when known; without a style, the same facts as plain titles.
    Returns the text artists."""
    right = lumi_text(luminosity) if luminosity is not None else ""
    if style is None:
        texts = [ax.set_title("Simulation", loc="left", fontstyle="italic")]
        if right:
            texts.append(ax.set_title(right, loc="right"))
        return texts
    hep = mplhep()
    module = {"CMS": hep.cms, "ATLAS": hep.atlas, "LHCb": hep.lhcb}.get(style, hep.alice)
    # no com: the spec does not say the collision energy, and a wrong "13 TeV" is worse
    drawn = module.label(ax=ax, data=False, rlabel=right)
    return [text for text in drawn if text is not None]


def draw_rejection(ax: Any, rejection: dict[str, Any]) -> list[Any]:
    """Background rejection ``1/ε_b`` (log axis) against signal efficiency."""
    auc = rejection.get("auc")
    name = rejection.get("signal", "signal")
    label = f"{name} (AUC {auc:.3f})" if auc is not None else name
    lines = ax.plot(rejection["signal_efficiency"], rejection["background_rejection"], label=label)
    ax.set_yscale("log")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("signal efficiency $\\varepsilon_s$")
    ax.set_ylabel("background rejection $1/\\varepsilon_b$")
    ax.legend(loc="upper right")
    return list(lines)


def signal_scale(signal: float, background: float) -> float:
    """A round factor (1, 2 or 5 times a power of ten) that brings a small signal up to
    about the background's size, so its shape shows; 1 when it already shows."""
    if signal <= 0 or background <= 0 or background < 5 * signal:
        return 1.0
    ratio = background / signal
    power = 10.0 ** math.floor(math.log10(ratio))
    return max(m * power for m in (1, 2, 5) if m * power <= ratio)


def _power_of_ten(ax: Any) -> str:
    """Write large or tiny y ticks as multiples of a power of ten named in the axis
    label: matplotlib's offset text ("1e6") would sit under the experiment label."""
    from matplotlib.ticker import FuncFormatter

    top = ax.get_ylim()[1]
    if not (top >= 1e4 or 0 < top < 1e-2):
        return ""
    power = math.floor(math.log10(top))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 10.0**power:g}"))
    return f"$10^{{{power}}}$ "


def draw_yields(ax: Any, yields: dict[str, Any]) -> dict[str, Any]:
    """Score distributions in expected events per bin: the backgrounds stacked and
    filled, the signal (``yields["signal"]``, scaled by ``yields["signal_scale"]``) as a
    line on top. Returns ``{"backgrounds": [...], "signal": [...]}`` of mplhep artists."""
    import numpy as np

    hep = mplhep()
    edges = np.asarray(yields["edges"])
    signal = yields["signal"]
    backgrounds = [name for name in yields["classes"] if name != signal]
    scale = float(yields.get("signal_scale", 1.0))
    stacked = hep.histplot(
        [np.asarray(yields["classes"][name]) for name in backgrounds],
        edges,
        stack=True,
        histtype="fill",
        label=backgrounds,
        ax=ax,
    )
    label = signal if scale == 1 else f"{signal} $\\times${scale:g}"
    line = hep.histplot(
        np.asarray(yields["classes"][signal]) * scale,
        edges,
        yerr=np.asarray(yields["errors"][signal]) * scale,
        histtype="step",
        color="black",
        linewidth=2,
        label=label,
        ax=ax,
    )
    ax.set_xlim(edges[0], edges[-1])
    # the top third stays free for the legend (right) and an in-frame label (left)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.5)
    ax.set_xlabel(yields.get("title", "score"))
    ax.set_ylabel(_power_of_ten(ax) + "events / bin")
    ax.legend(loc="upper right", ncols=2 if len(backgrounds) > 1 else 1)
    return {"backgrounds": list(stacked), "signal": list(line)}
