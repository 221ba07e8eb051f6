"""Streaming benchmark: our batches against bare uproot, side by side in one run.

Prints one JSON line of ratios (machines here are noisy: compare within a run)::

    python benchmarks/stream_bench.py            # full size (5 x 200k events)
    python benchmarks/stream_bench.py --events 20000   # quick

Both sides read the same branches: the features and the ``label`` branch (our batches
carry the labels; the bare side reads them too, then stacks the features).

Targets: flat_ratio >= 0.9, jagged_ratio >= 0.6, jagged_vs_naive >= 3,
rss_5_vs_1 <= 1.1, warm_first_batch_vs_chunk <= 2, cached_stats_events_read == 0.

``rntuple`` holds the same flat and jagged ratios with the files rewritten as RNTuples,
``discovery`` the time to describe a 1,500-branch file over uproot's ``keys()`` (see
``formats_bench.py``; targets there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from benchmarks.formats_bench import discovery_figures, rntuple_figures
from mlaas_jupyter.stream import BatchStream, DatasetSpec, StatsCache, compute_stats
from mlaas_jupyter.stream.jagged import jagged_parts

CACHE = Path(__file__).resolve().parent / ".cache"
FLAT = [f"x{i}" for i in range(16)]
JAGGED = ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btag"]
LABEL = "label"  # read by both sides: a training batch holds its labels
STEP = "64 MB"


def make_files(events: int, n_files: int = 5) -> list[str]:
    """Synthetic ZLIB files (cached): 16 flat float32 branches and 5 jagged jet branches."""
    folder = CACHE / f"stream-{events}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n_files):
        path = folder / f"bench_{k}.root"
        paths.append(str(path))
        if path.exists():
            continue
        rng = np.random.default_rng(k)
        counts = rng.poisson(5, events)
        total = int(counts.sum())
        jets = ak.unflatten(
            ak.zip({name[4:]: rng.normal(50, 20, total).astype(np.float32) for name in JAGGED}),
            counts,
        )
        columns: dict[str, Any] = {
            name: rng.normal(0, 1, events).astype(np.float32) for name in FLAT
        }
        columns["label"] = (rng.random(events) < 0.5).astype(np.int32)
        columns["Jet"] = jets
        tmp = path.with_suffix(".tmp")
        with uproot.recreate(tmp, compression=uproot.ZLIB(1)) as handle:
            types = {n: (v.type.content if n == "Jet" else v.dtype) for n, v in columns.items()}
            tree = handle.mktree("Events", types)
            for start in range(0, events, 50_000):
                tree.extend({n: v[start : start + 50_000] for n, v in columns.items()})
        tmp.rename(path)
    return paths


def spec_for(files: list[str], branches: list[str], jagged_length: int = 8) -> DatasetSpec:
    return DatasetSpec.from_dict(
        {
            "files": files,
            "tree": "Events",
            "label_branch": "label",
            "branches": branches,
            "jagged": {"*": {"length": jagged_length}},
            "split": {"train": 1.0, "validation": 0.0, "test": 0.0},
            "step_size": STEP,
            "shuffle_buffer": 100_000,
        }
    )


def ours(spec: DatasetSpec, cache: StatsCache) -> float:
    stream = BatchStream(spec, "train", 1024, cache=cache)
    started = time.perf_counter()
    events = sum(len(b.y) for b in stream)
    return events / (time.perf_counter() - started)


def bare_flat(files: list[str]) -> float:
    """Bare uproot: the feature matrix and the labels (what a batch holds), nothing else."""
    started, events = time.perf_counter(), 0
    for arrays in uproot.iterate(
        [f + ":Events" for f in files], [*FLAT, LABEL], step_size=STEP, library="np"
    ):
        x = np.stack([arrays[n] for n in FLAT], axis=1)
        events += len(x)
    return events / (time.perf_counter() - started)


def bare_jagged(files: list[str], naive_pad: bool) -> float:
    started, events = time.perf_counter(), 0
    for arrays in uproot.iterate(
        [f + ":Events" for f in files], [*JAGGED, LABEL], step_size=STEP, library="ak", how=dict
    ):
        if naive_pad:
            padded = [
                ak.to_numpy(ak.fill_none(ak.pad_none(arrays[n], 8, clip=True), np.float32(0)))
                for n in JAGGED
            ]
            events += len(np.concatenate(padded, axis=1))
        else:
            events += len(arrays[JAGGED[0]])
    return events / (time.perf_counter() - started)


def conversion_rates(stream: BatchStream, files: list[str]) -> tuple[Any, Any]:
    """Jagged-to-matrix conversion alone, on the same chunks already in memory:
    ours (padding, normalisation and masks into one matrix) and the naive awkward way
    (``pad_none`` + ``fill_none`` + ``to_numpy`` per branch, then concatenate)."""
    chunks = [
        arrays
        for arrays in uproot.iterate(
            [f + ":Events" for f in files[:2]], JAGGED, step_size=STEP, library="ak", how=dict
        )
    ]
    events = sum(len(c[JAGGED[0]]) for c in chunks)

    def ours_convert() -> float:
        started = time.perf_counter()
        for arrays in chunks:
            parts = {n: jagged_parts(arrays[n], n) for n in JAGGED}
            stream.layout.fill({}, parts, np.arange(len(arrays[JAGGED[0]])))
        return events / (time.perf_counter() - started)

    def naive_convert() -> float:
        started = time.perf_counter()
        for arrays in chunks:
            padded = [
                ak.to_numpy(ak.fill_none(ak.pad_none(arrays[n], 8, clip=True), np.float32(0)))
                for n in JAGGED
            ]
            np.concatenate(padded, axis=1)
        return events / (time.perf_counter() - started)

    return ours_convert, naive_convert


def paired_ratio(ours_run: Any, theirs_run: Any, rounds: int) -> tuple[float, float, float]:
    """Median over ``rounds`` of (ours / theirs), each round measuring both back to back,
    so a noisy neighbour slows both sides of a round alike; which side goes first
    alternates, so a drifting load favours neither. Also the best rates."""
    ratios, mine, theirs = [], [], []
    for k in range(rounds):
        if k % 2:
            b, a = theirs_run(), ours_run()
        else:
            a, b = ours_run(), theirs_run()
        ratios.append(a / b)
        mine.append(a)
        theirs.append(b)
    return statistics.median(ratios), max(mine), max(theirs)


def first_batch_ratio(spec: DatasetSpec, cache: StatsCache, files: list[str], rounds: int) -> float:
    """Time to the first batch (warm stats cache) over the time to read one chunk."""
    step = uproot.open(files[0])["Events"].num_entries_for(STEP, filter_name=JAGGED)
    ratios = []
    for _ in range(rounds):
        started = time.perf_counter()
        stream = BatchStream(spec, "train", 1024, cache=cache)
        batches = iter(stream)
        next(batches)
        first = time.perf_counter() - started
        batches.close()  # type: ignore[attr-defined]
        started = time.perf_counter()
        uproot.open(files[0])["Events"].arrays(JAGGED, entry_stop=step)
        ratios.append(first / (time.perf_counter() - started))
    return statistics.median(ratios)


def peak_rss_child(files: list[str]) -> int:
    """Peak RSS (KiB) of a fresh process streaming ``files`` (one epoch, jagged + flat)."""
    code = (
        "import resource,sys,json;from benchmarks.stream_bench import *;"
        "files=json.loads(sys.argv[1]);s=spec_for(files,FLAT+JAGGED);"
        "st=BatchStream(s,'train',1024,cache=False);"
        "n=sum(len(b.y) for b in st);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    env = dict(os.environ, MALLOC_ARENA_MAX="2")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(files)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env=env,
    )
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000, help="events per file")
    parser.add_argument("--rounds", type=int, default=5, help="paired measurement rounds")
    args = parser.parse_args()
    files = make_files(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        cache = StatsCache(tmp)
        flat_spec, jagged_spec = spec_for(files, FLAT), spec_for(files, JAGGED)
        first = compute_stats(flat_spec, cache=cache)
        second = compute_stats(flat_spec, cache=cache)
        compute_stats(jagged_spec, cache=cache)
        bare_flat(files[:1])  # warm the page cache and imports
        rounds = args.rounds
        flat, flat_ours, flat_bare = paired_ratio(
            lambda: ours(flat_spec, cache), lambda: bare_flat(files), rounds
        )
        jagged, jag_ours, jag_bare = paired_ratio(
            lambda: ours(jagged_spec, cache), lambda: bare_jagged(files, False), rounds
        )
        end_to_end, _, jag_naive = paired_ratio(
            lambda: ours(jagged_spec, cache), lambda: bare_jagged(files, True), rounds
        )
        ours_convert, naive_convert = conversion_rates(
            BatchStream(jagged_spec, "train", 1024, cache=cache), files
        )
        naive, convert_ours, convert_naive = paired_ratio(ours_convert, naive_convert, rounds)
        first_batch = first_batch_ratio(jagged_spec, cache, files, rounds)
    rss_1, rss_5 = peak_rss_child(files[:1]), peak_rss_child(files)
    rntuple = rntuple_figures(files, spec_for, FLAT, JAGGED, paired_ratio, rounds)
    discovery = discovery_figures(rounds)
    result = {
        "flat_ratio": round(flat, 3),
        "jagged_ratio": round(jagged, 3),
        "jagged_vs_naive": round(naive, 3),
        "jagged_vs_naive_end_to_end": round(end_to_end, 3),
        "rss_5_vs_1": round(rss_5 / rss_1, 3),
        "warm_first_batch_vs_chunk": round(first_batch, 3),
        "cached_stats_events_read": second.entries_read,
        "rntuple": rntuple,
        "discovery": discovery,
        "events_per_s": {
            "flat_ours": round(flat_ours),
            "flat_bare": round(flat_bare),
            "jagged_ours": round(jag_ours),
            "jagged_bare": round(jag_bare),
            "jagged_naive": round(jag_naive),
            "convert_ours": round(convert_ours),
            "convert_naive": round(convert_naive),
        },
        "first_stats_events_read": first.entries_read,
        "files": len(files),
        "events_per_file": args.events,
        "peak_rss_mib": {"1_file": rss_1 // 1024, "5_files": rss_5 // 1024},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    _ = resource  # peak RSS is read in the child processes
    main()
