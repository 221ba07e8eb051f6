"""The ``mlaas`` command line: one sub-command per module of this package.

Each sub-command module defines ``add_parser(subparsers)`` and ``run(args) -> int``;
modules are imported only when their command runs, so ``mlaas inspect`` never
pays for importing TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import MlaasError

__all__ = ["main"]

COMMANDS = {
    "inspect": "List the trees and branches of ROOT, Parquet or CSV files.",
    "stats": "Compute (or read from cache) the feature statistics of a dataset spec.",
    "stream": "Stream a dataset spec into batches and print shapes and throughput.",
    "train": "Train a model on a dataset spec (or MLaaS4HEP inputs) into a bundle.",
    "predict": "Score the events of a ROOT file with a trained bundle.",
    "serve": "Serve the REST API (jobs, data, models) in a server of its own.",
    "jobs": "Submit and follow jobs (the Jupyter server's, or the core in this process).",
    "sweep": "Run a hyperparameter sweep of a training spec (Optuna: grid, random, TPE).",
    "sweeps": "List, show, wait for, cancel and delete sweeps.",
    "compare": "Compare finished runs (job ids, run folders): metrics, spec differences, curves.",
    "report": "The training report of a finished run (run folder or job id): text, HTML, JSON.",
    "models": "List, use, upload and delete the served models.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlaas", description="Machine learning on ROOT files.")
    parser.add_argument("--version", action="version", version=f"mlaas-jupyter {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f".{name}", __name__)
        module.add_parser(subparsers.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors in the user's input print one line and exit with 2."""
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f".{args.command}", __name__)
    try:
        return int(module.run(args))
    except MlaasError as err:
        print(f"mlaas {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mlaas {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
