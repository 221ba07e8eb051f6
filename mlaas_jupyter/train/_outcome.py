"""`TrainResult`: what a finished training run returns (re-exported by :mod:`.runner`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """Where a finished run put its things, and how well the model did."""

    run_dir: Path
    bundle: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    #: (labels, weights, scores) of the split the metrics are of (one process only)
    scored: tuple[Any, ...] | None = field(default=None, repr=False)
