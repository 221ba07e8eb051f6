"""``mlaas predict``: score the events of a file with a trained bundle.

``--out scores.root`` writes a friend tree (same tree name, same entries in the same
order); ``--json`` prints the scores of the first ``--limit`` entries instead.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_parser", "run"]

DEFAULT_LIMIT = 1000


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mlaas predict``."""
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder written by mlaas train")
    parser.add_argument("file", metavar="FILE", help="ROOT (or Parquet/CSV) file to score")
    parser.add_argument("--tree", metavar="NAME", help="tree to score (default: the training tree)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", metavar="SCORES.root", help="write the scores as a friend tree")
    mode.add_argument("--json", action="store_true", help="print the scores as JSON instead")
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help=f"with --json: score only the first N entries (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--prefix", default="score", help="score branch name (default: score)")
    parser.add_argument("--step-size", default="64 MB", help="bytes or entries read per chunk")
    parser.add_argument(
        "--engine",
        choices=("auto", "onnxruntime", "native"),
        default="auto",
        help="auto: ONNX Runtime when the bundle has an ONNX model",
    )


def _step(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def run(args: argparse.Namespace) -> int:
    """Write the friend tree (``--out``) or print JSON scores (``--json``)."""
    from ..errors import DataError
    from ..inference.bundle import load_bundle

    if args.limit is not None and not args.json:
        raise DataError("--limit applies to --json only")
    if args.limit is not None and args.limit < 0:
        raise DataError(f"--limit must be >= 0, got {args.limit}")
    bundle = load_bundle(args.bundle, engine=args.engine)
    step = _step(str(args.step_size))
    if args.json:
        import numpy as np

        limit = DEFAULT_LIMIT if args.limit is None else args.limit
        source = bundle.open_source(args.file, args.tree)
        try:
            parts = list(bundle.iter_scores(source, step, entry_stop=limit)) if limit else []
            entries, tree = source.entries, source.name
        finally:
            source.close()
        scores = np.concatenate(parts) if parts else np.zeros(0)
        document = {
            "bundle": bundle.name,
            "task": bundle.task,
            "classes": bundle.classes,
            "file": args.file,
            "tree": tree,
            "entries": entries,
            "scored": len(scores),
            "scores": scores.tolist(),
        }
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
        if len(scores) < entries:
            print(
                f"note: scored the first {len(scores)} of {entries} entries (--limit)",
                file=sys.stderr,
            )
        return 0
    from .._progress import progress_bar
    from ..inference.friend import score_branches, write_friend_tree

    source = bundle.open_source(args.file, args.tree)  # the bar's total; DataError early
    try:
        entries = source.entries
    finally:
        source.close()
    with progress_bar(total=entries, desc="scoring", unit="event") as bar:
        written = write_friend_tree(
            bundle, args.file, args.out, args.tree, args.prefix, step, on_chunk=bar.update
        )
    branches = ", ".join(score_branches(bundle, args.prefix))
    print(
        f"scored {written} entries with {bundle.name!r} ({bundle.engine}); "
        f"wrote {args.out} (branches {branches})"
    )
    return 0
