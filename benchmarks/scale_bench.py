"""Scaling benchmark: data-parallel training and the statistics pass, 2 workers over 1.

Prints one JSON line::

    python benchmarks/scale_bench.py            # ~3 minutes on 2 cores (+1 to write files)
    python benchmarks/scale_bench.py --quick    # tiny sizes (smoke test)

* ``ddp_2_vs_1``: training samples/s of ``training.workers: 2`` (two local ranks, one
  torch thread each, DistributedDataParallel over gloo) over ``workers: 1`` (one
  process, one thread), both through :func:`mlaas_jupyter.train.runner.train` on the
  example dataset. ``ddp_model`` says which model: an MLP 34-512-512-512-1 (0.54 M
  parameters) in global batches of 4096, 2048 per rank, so that a step's compute
  dominates its 2.2 MB gradient all-reduce and the ranks' meeting at it (with 1024 per
  rank the ratio was 1.52-1.56 across runs on 2 cores, with 512 a third of a step went
  to the meeting). The rate is that of the epochs after the first (which reads the
  files and fills the epoch cache), validation excluded.
* ``ddp_auc_delta``: ``|val_auc(2 workers) - val_auc(1 worker)|`` after the same epochs
  (``training.batch_size`` is the global batch: the same steps per epoch).
* ``stats_2_vs_1``: the statistics pass over ``stats_files`` files on a dask
  LocalCluster of 2 single-threaded workers over 1; each cluster is started (and its
  workers have imported the readers) before the clock starts.

Targets on a 2-core machine: ddp_2_vs_1 >= 1.6, ddp_auc_delta <= 0.005,
stats_2_vs_1 >= 1.6.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.specs.dataset import DatasetSpec
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.stream.stats import compute_stats, plan_for
from mlaas_jupyter.train.runner import train

CACHE = Path(__file__).resolve().parent / ".cache"
#: the global batch (2048 per rank with 2 workers): a step's compute, not its gradient
#: all-reduce and the ranks' meeting at it, then sets the pace on one core per rank
BATCH = 4096


def dataset(events_per_file: int, files_per_class: int) -> tuple[Path, dict[str, Any]]:
    """The example dataset (cached): its folder and its dataset spec."""
    folder = CACHE / f"scale-{events_per_file}x{files_per_class}"
    path = write_example_dataset(folder, events_per_file, files_per_class)
    return folder, yaml.safe_load(path.read_text())


def train_rate(
    data: tuple[Path, dict[str, Any]], workers: int, sizes: list[int], epochs: int, work: Path
) -> tuple[float, float]:
    """(training samples/s after the first epoch, validation AUC after the last)."""
    folder, spec = data
    training = {
        "epochs": epochs,
        "batch_size": BATCH,
        "learning_rate": 1e-3,
        "device": "cpu",
        "threads": 1,
        "loader": "thread",  # each worker one process, one thread: the ratio is the scaling
        "early_stopping": None,
        "workers": workers,
        "output": str(work / "runs"),
    }
    model = {"name": "mlp", "params": {"sizes": sizes}}
    train_spec = TrainSpec.from_dict(
        {"dataset": spec, "model": model, "training": training}, folder
    )
    result = train(train_spec, cache=work / "stats-cache")
    later = result.history[1:] or result.history
    rate = sum(h["events"] for h in later) / sum(h["seconds"] for h in later)
    return rate, float(result.history[-1]["val_auc"])


def parameters(sizes: list[int], inputs: int = 34) -> int:
    """Weights and biases of the MLP ``inputs``-``sizes``-1."""
    widths = [inputs, *sizes, 1]
    return sum((a + 1) * b for a, b in itertools.pairwise(widths))


def _import_readers() -> None:
    import mlaas_jupyter.stream.stats  # noqa: F401


def stats_seconds(spec: DatasetSpec, workers: int) -> float:
    """Seconds of one statistics pass on a running LocalCluster of ``workers`` workers."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_import_readers)
        started = time.perf_counter()
        compute_stats(spec, cache=False, scheduler=cluster.scheduler_address)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = parser.parse_args()
    quick = args.quick
    sizes = [64] if quick else [512, 512, 512]
    epochs = 2 if quick else 3
    train_per_file = 2000 if quick else 100_000
    stats_per_file = 2000 if quick else 500_000
    train_data = dataset(train_per_file, 1)
    stats_data = dataset(stats_per_file, 4)  # 8 files: both workers stay busy
    with tempfile.TemporaryDirectory(prefix="mlaas-scale-") as tmp:
        work = Path(tmp)
        one, auc_one = train_rate(train_data, 1, sizes, epochs, work)
        two, auc_two = train_rate(train_data, 2, sizes, epochs, work)
    folder, spec = stats_data
    stats_spec = DatasetSpec.from_dict(spec, folder)
    stats_one = stats_seconds(stats_spec, 1)
    stats_two = stats_seconds(stats_spec, 2)
    files = len(plan_for(stats_spec).raw_files)
    result = {
        "ddp_2_vs_1": round(two / one, 3),
        "ddp_auc_delta": round(abs(auc_two - auc_one), 4),
        "stats_2_vs_1": round(stats_one / stats_two, 3),
        "ddp_model": f"mlp 34-{'-'.join(map(str, sizes))}-1 "
        f"({parameters(sizes)} parameters), batch {BATCH} ({BATCH // 2} per rank), 1 thread",
        "samples_per_s": {"workers_1": round(one), "workers_2": round(two)},
        "val_auc": {"workers_1": round(auc_one, 4), "workers_2": round(auc_two, 4)},
        "stats_seconds": {"workers_1": round(stats_one, 3), "workers_2": round(stats_two, 3)},
        "epochs": epochs,
        "train_events": 2 * train_per_file,
        "stats_files": files,
        "stats_events": files * stats_per_file,
        "cores": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
