"""``mlaas stream SPEC``: stream batches and print shapes, class counts and throughput."""

from __future__ import annotations

import argparse
import json

from ..stream import BatchStream, DatasetSpec
from .stats import print_balancing


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="dataset spec (YAML or JSON)")
    parser.add_argument("--split", default="train", choices=["train", "validation", "test"])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--limit", type=int, help="stop after this many events")
    parser.add_argument("--no-shuffle", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")


def run(args: argparse.Namespace) -> int:
    spec = DatasetSpec.from_file(args.spec)
    stream = BatchStream(
        spec,
        args.split,
        args.batch_size,
        limit=args.limit,
        shuffle=False if args.no_shuffle else None,
    )
    first = None
    for batch in stream:
        if first is None:
            first = batch
    report = stream.report
    rate = report.events / report.seconds if report.seconds > 0 else 0.0
    labels = spec.labels if spec.task != "regression" else ()
    classes = {
        labels[k] if k < len(labels) else str(k): v for k, v in sorted(report.class_events.items())
    }
    summary = {
        "split": args.split,
        "batches": report.batches,
        "events": report.events,
        "entries_read": report.entries_read,
        "x_shape": [batch_len(first), stream.width],
        "x_dtype": str(first.x.dtype) if first is not None else "float32",
        "classes": classes,
        # what balance did: the weights streamed per class, and before -> after by class
        "class_weights": {
            labels[k] if k < len(labels) else str(k): w
            for k, w in sorted(report.class_weights.items())
        },
        "balancing": stream.balance_report(),
        "events_per_s": round(rate),
        # friend trees of scores left out, damaged files skipped (on_error: skip)
        "notes": stream.stats.notes,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{report.batches} batches of up to {args.batch_size} events, "
        f"x {tuple(summary['x_shape'])} float32"
    )
    print(f"events: {report.events} ({report.entries_read} read), per class: {classes}")
    print(f"throughput: {rate:,.0f} events/s over {report.seconds:.2f} s")
    print("columns: " + ", ".join(stream.layout.column_names))
    print_balancing(summary["balancing"])
    for note in summary["notes"]:
        print(f"note: {note}")
    return 0


def batch_len(batch: object) -> int:
    return len(batch.y) if batch is not None else 0  # type: ignore[attr-defined]
