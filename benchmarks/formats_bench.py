"""RNTuple streaming and 1,500-branch discovery figures (``stream_bench.py`` prints them in
its JSON line under ``rntuple`` and ``discovery``; alone, this prints just those)::

    python benchmarks/formats_bench.py --events 20000

``rntuple``: our batches against bare uproot reading the same RNTuples (the stream
bench's TTree files rewritten as RNTuples, same branches, clusters of 50k entries).
``discovery``: describing a NanoAOD-like file of 1,500 branches (``inspect_file``, what
``mlaas inspect`` and the REST ``branches`` route do: open, list, describe each branch)
over uproot's own ``uproot.open(f)["Events"].keys()``, as a TTree and as an RNTuple.

Targets: rntuple flat_ratio >= 0.9 and jagged_ratio >= 0.6 (as for TTrees);
discovery ttree_vs_keys <= 3.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from mlaas_jupyter.stream import BatchStream, DatasetSpec, StatsCache, compute_stats
from mlaas_jupyter.stream.sources import inspect_file

CACHE = Path(__file__).resolve().parent / ".cache"
#: NanoAOD-like collections (jagged) and flat groups: 15 x 100 = 1,500 branches
COLLECTIONS = ["Jet", "Muon", "Electron", "Tau", "Photon", "FatJet", "SubJet", "GenPart"]
COLLECTIONS += ["TrigObj", "IsoTrack", "SV"]
FLAT_GROUPS = ["PV", "MET", "HLT", "Flag"]
PER_GROUP = 100
CLUSTER = 50_000


def rntuple_copies(tree_files: list[str]) -> list[str]:
    """The TTree ``Events`` of each file rewritten as an RNTuple (cached, ZLIB level 1)."""
    copies = []
    for source in map(Path, tree_files):
        target = source.parent.with_name(source.parent.name + "-rntuple") / source.name
        copies.append(str(target))
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with uproot.open(source) as handle:
            arrays = handle["Events"].arrays(library="ak", how=dict)
        arrays.pop("nJet", None)  # the counter of the TTree's Jet_* branches
        tmp = target.with_suffix(".tmp")
        with uproot.recreate(tmp, compression=uproot.ZLIB(1)) as handle:
            out = handle.mkrntuple("Events", ak.zip(arrays, depth_limit=1).layout.form)
            for start in range(0, len(arrays["label"]), CLUSTER):
                out.extend({k: v[start : start + CLUSTER] for k, v in arrays.items()})
        tmp.rename(target)
    return copies


def wide_file(events: int = 1000, rntuple: bool = False) -> str:
    """A NanoAOD-like file of 1,500 branches (cached): ``Jet_v0``... jagged float32
    (with counters ``nJet``... in the TTree), ``HLT_v0``... flat."""
    path = CACHE / f"wide-{events}-{'rntuple' if rntuple else 'ttree'}.root"
    if path.exists():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    columns: dict[str, Any] = {}
    for prefix in COLLECTIONS:
        counts = rng.poisson(3, events)
        # the TTree gets one counter per collection and PER_GROUP - 1 fields
        fields = PER_GROUP - (0 if rntuple else 1)
        values = {f"v{k}": rng.random(int(counts.sum())).astype(np.float32) for k in range(fields)}
        if rntuple:
            columns.update({f"{prefix}_{k}": ak.unflatten(v, counts) for k, v in values.items()})
        else:
            columns[prefix] = ak.unflatten(ak.zip(values), counts)
    for prefix in FLAT_GROUPS:
        dtype = np.bool_ if prefix in ("HLT", "Flag") else np.float32
        for k in range(PER_GROUP):
            columns[f"{prefix}_v{k}"] = (rng.random(events) < 0.5).astype(dtype)
    tmp = path.with_suffix(".tmp")
    with uproot.recreate(tmp) as handle:
        if rntuple:
            handle["Events"] = columns
        else:
            types = {k: v.type.content if k in COLLECTIONS else v.dtype for k, v in columns.items()}
            handle.mktree("Events", types).extend(columns)
    tmp.rename(path)
    return str(path)


def _median_time_ratio(
    ours: Callable[[], Any], theirs: Callable[[], Any], rounds: int
) -> dict[str, float]:
    """Median over rounds of (our seconds / their seconds), measured back to back."""
    ratios, mine, bare = [], [], []
    for k in range(rounds):
        pair = []
        for run in (ours, theirs) if k % 2 == 0 else (theirs, ours):
            started = time.perf_counter()
            run()
            pair.append(time.perf_counter() - started)
        a, b = pair if k % 2 == 0 else pair[::-1]
        ratios.append(a / b)
        mine.append(a)
        bare.append(b)
    return {
        "ratio": round(statistics.median(ratios), 3),
        "ours_ms": round(1000 * min(mine), 1),
        "keys_ms": round(1000 * min(bare), 1),
    }


def discovery_figures(rounds: int = 5) -> dict[str, Any]:
    """Our description of a 1,500-branch file over uproot's ``keys()`` (each from a
    fresh open, as a first look at a file is)."""
    figures: dict[str, Any] = {}
    for kind in ("ttree", "rntuple"):
        path = wide_file(rntuple=kind == "rntuple")

        def ours(path: str = path) -> Any:
            return inspect_file(path)

        def theirs(path: str = path) -> Any:
            return uproot.open(path)["Events"].keys()

        (info,), keys = ours(), theirs()
        assert len(info.branches) >= 1500, len(info.branches)
        measured = _median_time_ratio(ours, theirs, rounds)
        figures[f"{kind}_vs_keys"] = measured.pop("ratio")
        figures[f"{kind}_ms"] = {**measured, "branches": len(info.branches), "keys": len(keys)}
    return figures


def rntuple_figures(
    files: list[str],
    spec_for: Callable[[list[str], list[str]], DatasetSpec],
    flat: list[str],
    jagged: list[str],
    paired_ratio: Callable[..., tuple[float, float, float]],
    rounds: int,
    step: str = "64 MB",
) -> dict[str, Any]:
    """Ours against bare uproot on the RNTuple copies of ``files`` (flat and jagged)."""
    copies = rntuple_copies(files)
    sources = [f + ":Events" for f in copies]

    def bare(columns: list[str], stack: bool) -> float:
        """What the stream bench's bare side does, on the RNTuples."""
        started, events = time.perf_counter(), 0
        library = "np" if stack else "ak"
        wanted = [*columns, "label"]
        for arrays in uproot.iterate(sources, wanted, step_size=step, library=library, how=dict):
            if stack:
                events += len(np.stack([arrays[n] for n in columns], axis=1))
            else:
                events += len(arrays[columns[0]])
        return events / (time.perf_counter() - started)

    def ours(spec: DatasetSpec, cache: StatsCache) -> float:
        started = time.perf_counter()
        events = sum(len(b.y) for b in BatchStream(spec, "train", 1024, cache=cache))
        return events / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        cache = StatsCache(tmp)
        flat_spec, jagged_spec = spec_for(copies, flat), spec_for(copies, jagged)
        compute_stats(flat_spec, cache=cache)
        compute_stats(jagged_spec, cache=cache)
        bare(flat, True)  # warm the page cache
        flat_ratio, flat_ours, flat_bare = paired_ratio(
            lambda: ours(flat_spec, cache), lambda: bare(flat, True), rounds
        )
        jagged_ratio, jag_ours, jag_bare = paired_ratio(
            lambda: ours(jagged_spec, cache), lambda: bare(jagged, False), rounds
        )
    return {
        "flat_ratio": round(flat_ratio, 3),
        "jagged_ratio": round(jagged_ratio, 3),
        "events_per_s": {
            "flat_ours": round(flat_ours),
            "flat_bare": round(flat_bare),
            "jagged_ours": round(jag_ours),
            "jagged_bare": round(jag_bare),
        },
    }


def main() -> None:
    from benchmarks import stream_bench

    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000, help="events per file")
    parser.add_argument("--rounds", type=int, default=5, help="paired measurement rounds")
    args = parser.parse_args()
    files = stream_bench.make_files(args.events)
    result = {
        "rntuple": rntuple_figures(
            files,
            stream_bench.spec_for,
            stream_bench.FLAT,
            stream_bench.JAGGED,
            stream_bench.paired_ratio,
            args.rounds,
        ),
        "discovery": discovery_figures(args.rounds),
        "events_per_file": args.events,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
