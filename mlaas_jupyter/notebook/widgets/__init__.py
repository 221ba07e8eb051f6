"""Notebook widgets: choose branches, cuts and models, and watch training live.

Each is one line to create, e.g. ``BranchSelector("file.root")``,
``CutEditor(spec)``, ``TrainingMonitor(job)``, ``TrainingStudio("data/*.root")`` or
``SweepStudio("train.yaml")``; ``show_sweep(record)`` shows a sweep's trials.
Front-ends are plain ES modules (anywidget) and stock ipywidgets: no build step.
"""

from __future__ import annotations

from ._branches import BranchSelector
from ._cuts import CutEditor
from ._models import ModelPicker
from ._monitor import TrainingMonitor
from ._studio import TrainingStudio
from ._sweep_studio import SweepStudio
from ._sweep_view import SweepView, show_sweep

__all__ = [
    "BranchSelector",
    "CutEditor",
    "ModelPicker",
    "SweepStudio",
    "SweepView",
    "TrainingMonitor",
    "TrainingStudio",
    "show_sweep",
]
