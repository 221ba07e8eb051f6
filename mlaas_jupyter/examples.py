"""A small, deterministic toy dataset with a NanoAOD-like schema.

The physics is a caricature of ttH(bb) versus tt+jets, good enough to train on
and to see a classifier learn, and nothing more: no detector simulation, no
matrix elements. Signal events have more jets, harder jets and more b-tagged
jets, and a broader missing transverse momentum than background. Both classes
share the same branches:

``MET_pt, MET_phi`` (flat), ``nJet`` and jagged ``Jet_pt, Jet_eta, Jet_phi,
Jet_mass, Jet_btag`` (jets in decreasing pt, as NanoAOD stores them),
``nMuon`` and jagged ``Muon_pt, Muon_eta``, and ``EventWeight`` (flat).

Files are written with uproot as TTrees named ``Events`` and are reproducible
bit for bit from ``seed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot
import yaml

__all__ = ["make_events", "write_example_dataset"]


def make_events(n: int, signal: bool, rng: np.random.Generator) -> dict[str, Any]:
    """Columns of ``n`` toy events (signal or background) as NumPy/awkward arrays."""
    n_jets = rng.poisson(6.0 if signal else 4.0, n).astype(np.int64)
    total = int(n_jets.sum())
    scale = 70.0 if signal else 45.0
    jets = ak.zip(
        {
            "pt": (20.0 + rng.exponential(scale, total)).astype(np.float32),
            "eta": rng.normal(0.0, 1.6 if signal else 2.0, total).astype(np.float32),
            "phi": rng.uniform(-np.pi, np.pi, total).astype(np.float32),
            "mass": (5.0 + rng.exponential(8.0, total)).astype(np.float32),
            "btag": np.clip(rng.beta(2.0, 2.5 if signal else 5.0, total), 0.0, 1.0).astype(
                np.float32
            ),
        }
    )
    jets = ak.unflatten(jets, n_jets)
    # pt-ordered, as NanoAOD stores its collections: Jet_pt[:, 0] is the leading jet
    jets = jets[ak.argsort(jets.pt, axis=1, ascending=False)]
    n_muons = rng.poisson(0.8, n).astype(np.int64)
    m_total = int(n_muons.sum())
    muons = ak.unflatten(
        ak.zip(
            {
                "pt": (10.0 + rng.exponential(25.0, m_total)).astype(np.float32),
                "eta": rng.normal(0.0, 1.5, m_total).astype(np.float32),
            }
        ),
        n_muons,
    )
    return {
        "MET_pt": rng.gamma(2.0, 35.0 if signal else 25.0, n).astype(np.float32),
        "MET_phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
        "Jet": jets,
        "Muon": muons,
        "EventWeight": rng.uniform(0.5, 1.5, n).astype(np.float32),
    }


def _write(path: Path, events: dict[str, Any], compression: Any) -> None:
    with uproot.recreate(path, compression=compression) as handle:
        tree = handle.mktree(
            "Events",
            {
                name: (value.type.content if name in ("Jet", "Muon") else value.dtype)
                for name, value in events.items()
            },
        )
        tree.extend(events)


def write_example_dataset(
    directory: str | Path,
    events_per_file: int = 20_000,
    files_per_class: int = 2,
    seed: int = 2026,
    compression: Any = None,
) -> Path:
    """Write signal and background files plus ``dataset.yaml``; return the spec's path.

    Existing files with the same content are kept (the spec records the seed and
    sizes), so calling this twice is cheap.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec_path = directory / "dataset.yaml"
    recipe = {
        "seed": seed,
        "events_per_file": events_per_file,
        "files_per_class": files_per_class,
        "layout": 2,  # 2: jets in decreasing pt; older folders are written again
    }
    marker = directory / ".recipe.yaml"
    if spec_path.exists() and marker.exists() and yaml.safe_load(marker.read_text()) == recipe:
        return spec_path
    compression = uproot.ZLIB(1) if compression is None else compression
    for index, label in enumerate(("background", "signal")):
        for k in range(files_per_class):
            rng = np.random.default_rng([seed, index, k])
            events = make_events(events_per_file, label == "signal", rng)
            _write(directory / f"{label}_{k}.root", events, compression)
    spec = {
        "tree": "Events",
        "classes": {
            "background": ["background_*.root"],
            "signal": ["signal_*.root"],
        },
        "branches": ["MET_*", "Jet_*", "nJet"],
        "exclude": ["Jet_phi"],
        "new_branches": {"HT": "sum(Jet_pt)"},
        "cuts": ["nJet >= 2"],
        "jagged": {"Jet_*": {"length": 6, "sort_by": "Jet_pt"}},
        "normalisation": "standard",
        "weights": {"branch": "EventWeight"},
        "split": {"train": 0.7, "validation": 0.15, "test": 0.15},
        "seed": 1,
    }
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    marker.write_text(yaml.safe_dump(recipe))
    return spec_path
