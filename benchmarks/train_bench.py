"""Training benchmark: our streaming loader against the same data already in memory.

A 28-64-64-1 MLP trained with batches of 1024, once fed by ``BatchStream`` (through
``torch_batches`` / ``keras_dataset``) and once from pre-built tensors / NumPy arrays
holding the same normalised events. Both sides are measured back to back in one run
(after a warm-up pass each), five times, interleaved; the median of the five
ratios counts.
Prints one JSON line::

    python benchmarks/train_bench.py            # 2 files x 250k events (~2 minutes)
    python benchmarks/train_bench.py --quick    # 2 files x 20k events (smoke test)
    python benchmarks/train_bench.py --only keras --streaming-only   # one pair only

Targets: loader_vs_memory_torch >= 0.9, loader_vs_memory_keras >= 0.9.
``samples_per_s.loader_only`` is the stream alone (no training): when it is well above
the training rates but the ratios are low, the loader and the training loop are
competing for the CPU or the GIL rather than the loader being too slow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import uproot

from mlaas_jupyter.specs.training import TrainConfig
from mlaas_jupyter.stream import BatchStream, DatasetSpec, StatsCache, compute_stats
from mlaas_jupyter.stream.adapters import keras_dataset, torch_batches
from mlaas_jupyter.stream.stats import DatasetStats

CACHE = Path(__file__).resolve().parent / ".cache"
FEATURES = [f"f{i}" for i in range(28)]
BATCH = 1024
SIZES = (64, 64)
THREADS = max(1, (os.cpu_count() or 2) - 1)  # the runner's convention (TrainConfig.threads)


def make_files(events: int, n_files: int = 2) -> list[str]:
    """Synthetic ZLIB files (cached): 28 flat float32 features and an int32 ``label``."""
    folder = CACHE / f"train-{events}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n_files):
        path = folder / f"train_{k}.root"
        paths.append(str(path))
        if path.exists():
            continue
        rng = np.random.default_rng([7, k])
        label = (rng.random(events) < 0.5).astype(np.int32)
        shift = np.linspace(0.0, 1.0, len(FEATURES), dtype=np.float32)
        columns: dict[str, Any] = {
            name: (rng.normal(0.0, 1.0, events) + label * shift[i]).astype(np.float32)
            for i, name in enumerate(FEATURES)
        }
        columns["label"] = label
        tmp = path.with_suffix(".tmp")
        with uproot.recreate(tmp, compression=uproot.ZLIB(1)) as handle:
            tree = handle.mktree("Events", {n: v.dtype for n, v in columns.items()})
            for start in range(0, events, 50_000):
                tree.extend({n: v[start : start + 50_000] for n, v in columns.items()})
        tmp.rename(path)
    return paths


def spec_for(files: list[str]) -> DatasetSpec:
    return DatasetSpec.from_dict(
        {
            "files": files,
            "tree": "Events",
            "label_branch": "label",
            "branches": FEATURES,
            "normalisation": "standard",
            "split": {"train": 1.0, "validation": 0.0, "test": 0.0},
        }
    )


def in_memory(
    spec: DatasetSpec, stats: DatasetStats
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Every training event as the loader makes it (normalised), shuffled once."""
    batches = list(BatchStream(spec, "train", 65536, stats=stats, shuffle=False))
    x = np.concatenate([b.x for b in batches])
    y = np.concatenate([b.y for b in batches]).astype(np.float32)
    w = np.concatenate([b.w for b in batches])
    order = np.random.default_rng(0).permutation(len(y))
    return np.ascontiguousarray(x[order]), y[order], w[order]


def timed(run: Callable[[], int]) -> float:
    """Samples per second of one call of ``run`` (which returns the samples it trained on)."""
    started = time.perf_counter()
    samples = run()
    return samples / (time.perf_counter() - started)


# -- PyTorch ------------------------------------------------------------------------------
def torch_rates(
    spec: DatasetSpec,
    stats: DatasetStats,
    arrays: tuple[Any, ...],
    warmup: int,
    rounds: int,
    cache: int,
) -> tuple[list[float], list[float]]:
    import torch
    from torch import nn

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    layers: list[Any] = []
    width = len(FEATURES)
    for size in SIZES:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    model = nn.Sequential(*layers, nn.Linear(width, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.functional.binary_cross_entropy_with_logits

    def step(x: Any, y: Any, w: Any) -> None:
        loss = (loss_fn(model(x).reshape(-1), y, reduction="none") * w).sum() / w.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    x, y, w = (torch.from_numpy(a) for a in arrays)

    def memory(limit: int | None = None) -> int:
        n = len(y) if limit is None else min(limit, len(y))
        for start in range(0, n, BATCH):
            stop = min(start + BATCH, n)
            step(x[start:stop], y[start:stop], w[start:stop])
        return n

    # one stream for all epochs, with the loader the training runner uses
    stream = BatchStream(spec, "train", BATCH, stats=stats, loader="process", epoch_cache_mb=cache)

    def loader(limit: int | None = None) -> int:
        samples = 0
        for bx, by, bw in torch_batches(stream):
            step(bx, by, bw)
            samples += len(by)
            if limit is not None and samples >= limit:
                break
        return samples

    model.train()
    loader(None if cache else warmup)  # with a cache: one full epoch fills it
    memory(warmup)
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(timed(loader))
        time.sleep(0.5)  # the loader process makes the next epoch's first pools: not now
        theirs.append(timed(memory))
    stream.close()
    return ours, theirs


# -- Keras --------------------------------------------------------------------------------
def keras_rates(
    spec: DatasetSpec,
    stats: DatasetStats,
    arrays: tuple[Any, ...],
    warmup: int,
    rounds: int,
    cache: int,
) -> tuple[list[float], list[float]]:
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(min(THREADS, 2))
    keras.utils.set_random_seed(0)
    layers: list[Any] = [keras.Input(shape=(len(FEATURES),))]
    layers += [keras.layers.Dense(size, activation="relu") for size in SIZES]
    model = keras.Sequential([*layers, keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    x, y, w = arrays

    def memory(limit: int | None = None) -> int:
        n = len(y) if limit is None else min(limit, len(y))
        model.fit(
            x[:n], y[:n], sample_weight=w[:n], batch_size=BATCH, epochs=1, verbose=0, shuffle=True
        )
        return n

    stream = BatchStream(spec, "train", BATCH, stats=stats, loader="process", epoch_cache_mb=cache)
    dataset = keras_dataset(stream)

    def loader(limit: int | None = None) -> int:
        steps = None if limit is None else max(1, limit // BATCH)
        model.fit(dataset, epochs=1, verbose=0, steps_per_epoch=steps)
        return stream.report.events if steps is None else steps * BATCH

    loader(None if cache else warmup)  # with a cache: one full epoch fills it
    memory(warmup)
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(timed(loader))
        time.sleep(0.5)  # the loader process makes the next epoch's first pools: not now
        theirs.append(timed(memory))
    stream.close()
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=250_000, help="events per file (2 files)")
    parser.add_argument("--quick", action="store_true", help="2 x 20k events (smoke test)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurements")
    parser.add_argument(
        "--epoch-cache-mb",
        type=int,
        default=TrainConfig().epoch_cache_mb,
        help="the loader's epoch cache (default: the training runner's); *_streaming: 0",
    )
    parser.add_argument(
        "--only", choices=("torch", "keras"), help="measure one framework (its keys only)"
    )
    parser.add_argument(
        "--streaming-only", action="store_true", help="only the *_streaming pairs (cache off)"
    )
    args = parser.parse_args()
    events = 20_000 if args.quick else args.events
    files = make_files(events)
    spec = spec_for(files)
    with tempfile.TemporaryDirectory() as tmp:
        stats = compute_stats(spec, cache=StatsCache(tmp))
    arrays = in_memory(spec, stats)
    warmup = min(len(arrays[1]), 20 * BATCH)
    stream = BatchStream(spec, "train", BATCH, stats=stats)
    loader_only = max(timed(lambda: sum(len(b.y) for b in stream)) for _ in range(2))
    rates: dict[str, float] = {}
    ratios: dict[str, float] = {}
    # torch first, both ways, then Keras: TensorFlow's thread pools, once started, stay
    frameworks = (("torch", torch_rates), ("keras", keras_rates))
    modes = (("", args.epoch_cache_mb), ("_streaming", 0))
    for name, rates_of in frameworks:
        if args.only not in (None, name):
            continue
        for suffix, cache in modes[1:] if args.streaming_only else modes:
            ours, theirs = rates_of(spec, stats, arrays, warmup, args.rounds, cache)
            # each round's two sides ran back to back, under the same load: their ratio
            # is steadier than a ratio of rates taken at different moments
            ratios[f"{name}{suffix}"] = statistics.median(
                a / b for a, b in zip(ours, theirs, strict=True)
            )
            rates |= {
                f"{name}_loader{suffix}": statistics.median(ours),
                f"{name}_memory{suffix}": statistics.median(theirs),
            }
    result = {
        **{f"loader_vs_memory_{key}": round(value, 3) for key, value in ratios.items()},
        "samples_per_s": {k: round(v) for k, v in rates.items()}
        | {"loader_only": round(loader_only)},
        "epoch_cache_mb": args.epoch_cache_mb,
        "events": len(arrays[1]),
        "files": len(files),
        "batch_size": BATCH,
        "threads": THREADS,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
