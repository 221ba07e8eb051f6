"""Two classes whose event weights are known, for the balance reports (issue 22, item 5).

:func:`write_known_weights` writes ``kw_signal.root`` (300 events of weight 2: a sum of
600) and ``kw_background.root`` (800 events of weights 0.25 and 0.75 in turn: a sum
of 400), and returns the dataset spec that reads them with every event in the
training split. ``balance: weights`` must then give each class a sum of 500 (factors
5/6 and 5/4); ``balance: sample`` keeps 300 of the 800 background events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import uproot

SIGNAL_EVENTS, SIGNAL_SUM = 300, 600.0
BACKGROUND_EVENTS, BACKGROUND_SUM = 800, 400.0


def _write(path: Path, weights: np.ndarray[Any, Any]) -> None:
    with uproot.recreate(path) as handle:
        tree = handle.mktree("Events", {"x": np.float32, "y": np.float32, "w": np.float64})
        x = np.arange(len(weights), dtype=np.float32)
        tree.extend({"x": x, "y": np.sqrt(x), "w": weights})


def write_known_weights(folder: Path, prefix: str = "") -> dict[str, Any]:
    """Write the two files into ``folder``; the spec's file names start with ``prefix``
    (``toy/`` for a folder under a server's data root), its balance is ``none``."""
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "kw_signal.root", np.full(SIGNAL_EVENTS, 2.0))
    _write(folder / "kw_background.root", np.tile([0.25, 0.75], BACKGROUND_EVENTS // 2))
    return {
        "tree": "Events",
        "classes": {
            "signal": f"{prefix}kw_signal.root",
            "background": f"{prefix}kw_background.root",
        },
        "branches": ["x"],
        "weights": {"branch": "w"},
        "split": {"train": 1.0, "validation": 0.0, "test": 0.0},
        "balance": "none",
    }


def expected_balancing(method: str) -> dict[str, Any]:
    """The ``balancing`` of the stats of :func:`write_known_weights`'s spec."""
    if method == "weights":
        rows = {
            "signal": (SIGNAL_EVENTS, SIGNAL_EVENTS, SIGNAL_SUM, 500.0, 5 / 6, 1.0),
            "background": (BACKGROUND_EVENTS, BACKGROUND_EVENTS, BACKGROUND_SUM, 500.0, 1.25, 1.0),
        }
    elif method == "sample":  # the expected background: 3/8 of its events and weights
        rows = {
            "signal": (SIGNAL_EVENTS, SIGNAL_EVENTS, SIGNAL_SUM, SIGNAL_SUM, 1.0, 1.0),
            "background": (BACKGROUND_EVENTS, SIGNAL_EVENTS, BACKGROUND_SUM, 150.0, 1.0, 0.375),
        }
    else:
        rows = {
            "signal": (SIGNAL_EVENTS, SIGNAL_EVENTS, SIGNAL_SUM, SIGNAL_SUM, 1.0, 1.0),
            "background": (
                BACKGROUND_EVENTS,
                BACKGROUND_EVENTS,
                BACKGROUND_SUM,
                BACKGROUND_SUM,
                1.0,
                1.0,
            ),
        }
    fields = (
        "events_before",
        "events_after",
        "sum_weights_before",
        "sum_weights_after",
        "factor",
        "keep",
    )
    return {
        "method": method,
        "split": "train",
        "classes": {name: dict(zip(fields, row, strict=True)) for name, row in rows.items()},
        "problem": None,
    }
