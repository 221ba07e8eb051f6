"""mlaas-jupyter: train machine-learning models on ROOT files, from Jupyter or a CLI."""

from __future__ import annotations

from ._version import __version__
from .stream import BatchStream, DatasetSpec, compute_stats, inspect_file

__all__ = ["BatchStream", "DatasetSpec", "__version__", "compute_stats", "inspect_file"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension (imported only when Jupyter asks, not on ``import mlaas_jupyter``)."""
    from .server import _jupyter_server_extension_points as points

    return points()
