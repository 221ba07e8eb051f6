"""``mlaas stats SPEC``: the statistics pass of a dataset spec (cached).

``SPEC`` is a dataset spec, or a training spec whose ``dataset`` is used; the pass runs
on the training spec's ``cluster`` when it has one, or on ``--cluster``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..specs import load_mapping
from ..specs.cluster import ClusterSpec
from ..specs.training import TrainSpec
from ..stream import DatasetSpec, compute_stats
from ..stream.layout import FeatureLayout
from ..stream.plan import SPLITS
from ..stream.stats import plan_for
from ..stream.summary import stats_summary
from .predict import cluster_option


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="dataset or training spec (YAML or JSON)")
    parser.add_argument("--workers", type=int, default=1, help="files read in parallel (threads)")
    parser.add_argument(
        "--cluster",
        "--scheduler",
        dest="cluster",
        help="dask cluster of the pass (overrides the spec's): 'local', a scheduler "
        "address (tcp://host:8786), a YAML/JSON file or an inline mapping ({gateway: ...})",
    )
    parser.add_argument("--no-cache", action="store_true", help="read the events even if cached")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")


def print_balancing(report: dict[str, Any] | None) -> None:
    """The classes' sums of weights before and after ``balance`` (of the training split
    for ``mlaas stats``, of the split streamed for ``mlaas stream``)."""
    if report is None:  # a regression: no classes to balance
        return
    print(
        f"\nbalance: {report['method']} ({report['split']} split): "
        "sum of weights per class, before -> after"
    )
    for name, row in report["classes"].items():
        kept = (
            f", {row['events_after']} of {row['events_before']} events" if row["keep"] < 1 else ""
        )
        before, after = row["sum_weights_before"], row["sum_weights_after"]
        print(f"  {name:<16}{before:>14.6g} -> {after:<14.6g} x{row['factor']:.4g}{kept}")
    if report["problem"]:
        print(f"  {report['problem']}")


def run(args: argparse.Namespace) -> int:
    cluster: ClusterSpec | None = None
    if "dataset" in load_mapping(args.spec):  # a training spec: its dataset and cluster
        training = TrainSpec.from_file(args.spec)
        spec, cluster = training.dataset, training.cluster
    else:
        spec = DatasetSpec.from_file(args.spec)
    if args.cluster is not None:
        cluster = ClusterSpec.parse(cluster_option(args.cluster))  # the same as predict's
    started = time.perf_counter()
    stats = compute_stats(spec, cache=not args.no_cache, workers=args.workers, scheduler=cluster)
    seconds = time.perf_counter() - started
    summary = stats_summary(spec, stats)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    layout = FeatureLayout.build(spec, plan_for(spec).feature_kinds, stats)
    source = "cache" if stats.entries_read == 0 else f"{stats.entries_read} events read"
    print(f"statistics of {len(stats.files)} files ({source}, {seconds:.2f} s)")
    for note in stats.notes:
        print(f"note: {note}")
    print(
        f"events: {stats.entries_total} read, {stats.events_selected} pass the cuts"
        + (f", {stats.dropped_nonfinite} dropped for NaN/inf" if stats.dropped_nonfinite else "")
    )
    if spec.luminosity is not None:
        print(f"normalised to {spec.luminosity:g} pb^-1:")
        for sample in summary["samples"]:
            print(
                f"  sample {sample['name']} ({sample['class_name']}): xsec {sample['xsec']:g} pb,"
                f" sum_w {sample['sum_w']:.6g} over {sample['files']} files"
            )
    print(
        f"{'class':<16}" + "".join(f"{s:>12}" for s in SPLITS) + f"{'yield':>14}{'negative w':>12}"
    )
    for name, row in summary["classes"].items():
        counts = "".join(f"{part['events']:>12}" for part in row["splits"].values())
        print(f"{name:<16}{counts}{row['yield']:>14.6g}{row['negative_fraction']:>12.2%}")
    print_balancing(summary["balancing"])
    print(
        f"\n{'feature':<24}{'kind':<8}{'columns':>8}{'mean':>12}{'std':>12}{'min':>12}{'max':>12}"
    )
    for feature in layout.features:
        if feature.kind == "mask":
            print(f"{feature.name:<24}{'mask':<8}{feature.width:>8}")
            continue
        f = stats.features[feature.name]
        print(
            f"{feature.name:<24}{feature.kind:<8}{feature.width:>8}{f.mean:>12.4g}{f.std:>12.4g}"
            f"{f.min:>12.4g}{f.max:>12.4g}"
        )
    print(f"\ninput width: {layout.width} columns")
    return 0
