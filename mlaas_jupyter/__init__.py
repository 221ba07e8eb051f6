"""mlaas-jupyter: train machine-learning models on ROOT files, from Jupyter or a CLI.

The package's table of contents:

- specs: :class:`DatasetSpec`, :class:`TrainSpec` (the one parser of every spec);
- streaming: :class:`BatchStream`, :func:`compute_stats`, :func:`inspect_file`;
- inference: :func:`load_bundle`;
- the core service and its client: :class:`Mlaas`, :class:`Client`, :class:`Job`;
- the notebook: ``%load_ext mlaas_jupyter`` (the ``%mlaas`` magics) and
  :mod:`mlaas_jupyter.notebook` (the widgets).
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .specs import DatasetSpec, TrainSpec
from .stream import BatchStream, compute_stats, inspect_file

__all__ = [
    "BatchStream",
    "Client",
    "DatasetSpec",
    "Job",
    "Mlaas",
    "TrainSpec",
    "__version__",
    "compute_stats",
    "inspect_file",
    "load_bundle",
    "load_ipython_extension",
]

# loaded on first use, not on import: the client, the core and ONNX Runtime are heavy
_LAZY = {
    "Client": ("client", "Client"),
    "Job": ("client", "Job"),
    "Mlaas": ("core.service", "Mlaas"),
    "load_bundle": ("inference", "load_bundle"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attribute)
    raise AttributeError(f"module 'mlaas_jupyter' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The server extension (imported only when Jupyter asks, not on ``import mlaas_jupyter``)."""
    from .web import _jupyter_server_extension_points as points

    return points()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext mlaas_jupyter``: register the ``%mlaas`` / ``%%mlaas`` magics."""
    from .notebook.magics import MlaasMagics

    ipython.register_magics(MlaasMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext mlaas_jupyter``: nothing to undo beyond IPython's own bookkeeping."""
