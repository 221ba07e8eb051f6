"""``mlaas models``: the served models, through the core like every front door.

::

    mlaas models list
    mlaas models predict tth-bdt rows.json          # {"rows": [...]} or {"columns": {...}}
    mlaas models score tth-bdt data/*.root --out scores/ [--cluster local|ADDRESS|YAML]
    mlaas models upload bundle.zip --name tth-bdt
    mlaas models delete tth-bdt [--version 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .predict import add_cluster_option

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the sub-commands of ``mlaas models``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="every version of every model")
    predict = actions.add_parser("predict", help="scores of a JSON payload file")
    predict.add_argument("model")
    predict.add_argument("payload", help='JSON file: {"rows": [...]} or {"columns": {...}}')
    predict.add_argument("--version", type=int)
    score = actions.add_parser("score", help="a prediction job writing friend trees")
    score.add_argument("model")
    score.add_argument("files", nargs="+", help="ROOT files, folders or globs")
    score.add_argument(
        "--out", help="folder of the friend trees (default: scores/ beside each input)"
    )
    score.add_argument("--tree")
    score.add_argument("--version", type=int)
    add_cluster_option(score)
    upload = actions.add_parser("upload", help="register a bundle archive (zip, tar.gz)")
    upload.add_argument("archive")
    upload.add_argument("--name")
    delete = actions.add_parser("delete", help="remove a model (or one version)")
    delete.add_argument("model")
    delete.add_argument("--version", type=int)


def run(args: argparse.Namespace) -> int:
    """Run one action and print its answer as JSON; a failed scoring job exits 1."""
    from ..client import Client
    from ..errors import SpecError

    client = Client()
    if args.action == "list":
        answer = client.models()
    elif args.action == "predict":
        try:
            payload = json.loads(Path(args.payload).read_text())
        except (OSError, ValueError) as err:
            raise SpecError(args.payload, f"not a readable JSON file: {err}") from None
        if not isinstance(payload, dict) or len(payload) != 1:
            raise SpecError(args.payload, 'expected {"rows": [...]} or {"columns": {...}}')
        data = payload.get("rows", payload.get("columns"))
        answer = client.predict(args.model, data, version=args.version)
    elif args.action == "score":
        from .predict import cluster_option

        files = args.files[0] if len(args.files) == 1 else args.files
        cluster = cluster_option(args.cluster)  # a file is read here, as spec files are
        answer = client.predict_file(
            args.model, files, args.out, args.tree, version=args.version, wait=True, cluster=cluster
        )
    elif args.action == "upload":
        answer = client.upload_model(args.archive, name=args.name)
    else:
        answer = client.delete_model(args.model, args.version)
    print(json.dumps(answer, indent=1))
    return 1 if answer.get("state") not in (None, "succeeded") else 0
