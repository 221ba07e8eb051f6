"""``mlaas compare``: finished runs side by side, from job ids and run folders.

::

    mlaas compare 3f2a9c1b0d4e runs/mlp-20261206-200459 --out compare.png
    mlaas compare ID ID ID --json > comparison.json

Prints the test metrics of each run, their models and what differs between their
specs; ``--out`` writes the figure (overlaid ROC and rejection curves, score
distributions, loss and validation curves) as PNG, PDF or SVG. Run folders are read
here; job ids go to the client (the Jupyter server of this shell, or the core in
this process), which is only made when a job id is given.
"""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mlaas compare``."""
    parser.add_argument(
        "runs", nargs="+", metavar="ID_OR_RUN_DIR", help="job ids and/or run folders (2 or more)"
    )
    parser.add_argument("--out", metavar="FILE", help="write the figure (.png, .pdf or .svg)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")


def run(args: argparse.Namespace) -> int:
    """Print the comparison (text or JSON); write the figure with ``--out``."""
    from ..client._compare import compare, run_kinds

    if all(kind == "folder" for kind, _ in run_kinds(args.runs)):
        comparison = compare(None, args.runs)  # no server, no core: the folders only
    else:
        from ..client import Client

        comparison = Client().compare(*args.runs)
    if args.out is not None:
        written = comparison.save(args.out)
    print(json.dumps(comparison.to_dict(), indent=1) if args.json else comparison.text())
    if args.out is not None and not args.json:
        print(f"\nwrote {written}")
    return 0
