"""The core service: one facade over jobs, models and data, with no Jupyter import.

Every front door (the REST API, ``mlaas serve``, the in-process client, the magics,
the widgets, the CLI) calls :class:`Mlaas`, through the operation table of
:mod:`mlaas_jupyter.web.routes`.
"""

from __future__ import annotations

from .service import Mlaas

__all__ = ["Mlaas"]
