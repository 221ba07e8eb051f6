"""A NanoAOD-sized ROOT file written by uproot (1,500 branches: 1,000 flat, 500 jagged),
for the tests of what must stay quick and usable at that size (the branch selector)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot

__all__ = ["COLLECTIONS", "FLAT", "write_nanoaod_like"]

#: jagged collection -> number of float fields (NanoAOD-like: 500 jagged branches)
COLLECTIONS = {
    "Jet": 40,
    "Muon": 60,
    "Electron": 60,
    "Photon": 40,
    "Tau": 50,
    "FatJet": 40,
    "GenPart": 20,
    "TrigObj": 20,
    "IsoTrack": 20,
    "SV": 20,
    "GenJet": 10,
    "LHEPart": 10,
    "SubJet": 20,
    "GenVisTau": 10,
    "CorrT1METJet": 10,
    "SoftActivityJet": 10,
    "OtherPV": 10,
    "LowPtElectron": 50,
}
#: flat blocks: prefix -> (branches, dtype); with the counters, run, event... 1,000 flat
FLAT = {
    "HLT": (631, np.bool_),
    "L1": (250, np.bool_),
    "Flag": (30, np.bool_),
    "MET": (25, np.float32),
    "PuppiMET": (15, np.float32),
    "Pileup": (10, np.float32),
    "PV": (12, np.float32),
    "fixedGridRhoFastjet": (5, np.float32),
}
PLAIN = {"run": np.uint32, "luminosityBlock": np.uint32, "event": np.uint64}


def write_nanoaod_like(path: Path, entries: int = 10, seed: int = 0) -> dict[str, str]:
    """Write tree ``Events`` to ``path``; returns branch name -> kind (flat or jagged)
    as :func:`~mlaas_jupyter.stream.inspect_file` should report it."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, object] = {}
    kinds: dict[str, str] = {}
    for name, plain in PLAIN.items():
        arrays[name] = np.arange(entries).astype(plain)
        kinds[name] = "flat"
    arrays["genWeight"] = rng.normal(1.0, 0.5, entries).astype(np.float32)
    kinds["genWeight"] = "flat"
    for prefix, (count, dtype) in FLAT.items():
        for i in range(count):
            name = f"{prefix}_v{i}"
            values = rng.random(entries)
            arrays[name] = (values > 0.5) if dtype is np.bool_ else values.astype(dtype)
            kinds[name] = "flat"
    counts = rng.integers(0, 4, entries)
    for collection, fields in COLLECTIONS.items():
        objects = {
            f"f{i}": ak.unflatten(rng.random(int(counts.sum())).astype(np.float32), counts)
            for i in range(fields)
        }
        # one record per collection: uproot writes one counter nJet for all Jet_* fields
        arrays[collection] = ak.zip(objects)
        kinds[f"n{collection}"] = "flat"
        kinds.update({f"{collection}_f{i}": "jagged" for i in range(fields)})
    with uproot.recreate(path) as handle:
        handle.mktree("Events", {k: _type(v) for k, v in arrays.items()}).extend(arrays)
    return kinds


def _type(values: object) -> object:
    return values.dtype if isinstance(values, np.ndarray) else ak.type(values).content
