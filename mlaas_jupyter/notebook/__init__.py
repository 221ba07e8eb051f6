"""The notebook front door: the ``%mlaas`` magics and the widgets.

::

    %load_ext mlaas_jupyter
    from mlaas_jupyter.notebook import TrainingStudio
    TrainingStudio("data/*.root")
"""

from __future__ import annotations

from typing import Any

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


def __getattr__(name: str) -> Any:
    # the widgets import ipywidgets: only when one is asked for, not with the magics
    if name in __all__:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
