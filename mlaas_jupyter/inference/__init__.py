"""Serving trained bundles: load one and score raw events, files or JSON rows.

::

    from mlaas_jupyter.inference import load_bundle

    bundle = load_bundle("runs/mlp-20260101-120000/bundle")
    scores = bundle.predict("events.root")          # every entry, in order
    scores = bundle.predict([{"MET_pt": 40.0, "Jet_pt": [50.0, 31.5], ...}])
"""

from __future__ import annotations

from .bundle import ModelBundle, load_bundle

__all__ = ["ModelBundle", "load_bundle"]
