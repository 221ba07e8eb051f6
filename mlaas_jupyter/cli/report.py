"""``mlaas report``: the training report of a finished run, from a run folder or a job.

::

    mlaas report runs/mlp-20261206-200459
    mlaas report 3f2a9c1b0d4e --html report.html
    mlaas report runs/mlp-20261206-200459 --json > report.json

Prints the report's tables: the overtraining check (KS p-value per class, flagged
below the threshold), the variable ranking, the signal efficiencies, the confusion
matrix or the regression's bias and resolution, the per-fold metrics. ``--html``
writes the report as one self-contained page (plots inlined); ``--json`` prints
``report.json``. A run folder is read here; a job id goes to the client (the Jupyter
server of this shell, or the core in this process). A run without ``report.json``
(trained before reports existed) exits with 2 and one line saying so.
"""

from __future__ import annotations

import argparse
import json
import os

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mlaas report``."""
    parser.add_argument("run", metavar="RUN_DIR_OR_JOB_ID", help="a run folder or a job id")
    parser.add_argument("--html", metavar="FILE", help="write the report as an HTML page")
    parser.add_argument("--json", action="store_true", help="print report.json")


def run(args: argparse.Namespace) -> int:
    """Print the report (text or JSON); write the page with ``--html``."""
    from ..client._report import report
    from ..specs.requests import JOB_ID

    if os.path.isdir(args.run) or not JOB_ID.fullmatch(args.run):
        found = report(None, args.run)  # no server, no core: the folder only
    else:
        from ..client import Client

        found = Client().report(args.run)
    written = found.save(args.html) if args.html is not None else None
    print(json.dumps(found.data, indent=1) if args.json else found.text())
    if written is not None and not args.json:
        print(f"\nwrote {written}")
    return 0
