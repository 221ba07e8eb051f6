"""``mlaas sweeps``: list and manage sweeps, as ``mlaas jobs`` does jobs.

::

    mlaas sweeps list [--json]
    mlaas sweeps show ID | wait ID | cancel ID | resume ID | delete ID

(``mlaas sweep SPEC --param ...`` starts one.)
"""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the sub-commands of ``mlaas sweeps``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the sweeps, newest first")
    listing.add_argument("--json", action="store_true", help="print the records as JSON")
    for name, text in (
        ("show", "one sweep's trials and best trial (--json: its record)"),
        ("wait", "block until a sweep ends, printing its trials; exit 1 unless it succeeded"),
        ("cancel", "cancel a running sweep and its trials"),
        ("resume", "continue a lost sweep with its remaining trials"),
        ("delete", "remove a finished sweep's record (its trials stay as jobs)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("sweep_id", metavar="ID")
        if name == "show":
            action.add_argument("--json", action="store_true", help="print the record as JSON")


def run(args: argparse.Namespace) -> int:
    """Run one action."""
    from ..client import Client
    from ..client._sweep_table import SweepTable
    from .sweep import watch

    client = Client()
    if args.action == "list":
        sweeps = client.sweeps()
        if args.json:
            print(json.dumps(sweeps, indent=1))
        for record in [] if args.json else sweeps:
            print(SweepTable(record).head.splitlines()[0])
        if not sweeps and not args.json:
            print("no sweeps")
        return 0
    if args.action == "show":
        record = client.sweep(args.sweep_id)
        print(json.dumps(record, indent=1) if args.json else repr(SweepTable(record)))
        return 0
    if args.action == "wait":
        record = watch(client, args.sweep_id)
        print(SweepTable(record).head)
        return 0 if record["state"] == "succeeded" else 1
    calls = {
        "cancel": client.cancel_sweep,
        "resume": client.resume_sweep,
        "delete": client.delete_sweep,
    }
    print(json.dumps(calls[args.action](args.sweep_id), indent=1))
    return 0
