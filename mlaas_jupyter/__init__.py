"""mlaas-jupyter: train machine-learning models on ROOT files, from Jupyter or a CLI."""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .stream import BatchStream, DatasetSpec, compute_stats, inspect_file

__all__ = [
    "BatchStream",
    "DatasetSpec",
    "Job",
    "__version__",
    "compute_stats",
    "inspect_file",
    "load_ipython_extension",
]


def __getattr__(name: str) -> Any:
    # Job pulls in the client and job store: loaded on first use, not on import.
    if name == "Job":
        from .client._job import Job

        return Job
    raise AttributeError(f"module 'mlaas_jupyter' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension (imported only when Jupyter asks, not on ``import mlaas_jupyter``)."""
    from .web import _jupyter_server_extension_points as points

    return points()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext mlaas_jupyter``: register the ``%mlaas`` / ``%%mlaas`` magics."""
    from .notebook.magics import MlaasMagics

    ipython.register_magics(MlaasMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext mlaas_jupyter``: nothing to undo beyond IPython's own bookkeeping."""
