"""``mlaas serve``: the REST API of the core in a Jupyter server of its own.

::

    mlaas serve --models ~/models --port 8765 --register runs/job-1/bundle
    curl -H "Authorization: token $MLAAS_TOKEN" -d '{"rows": [{...}]}' \\
        http://127.0.0.1:8765/mlaas/api/models/higgs-mlp/predict

``--tfaas`` also mounts TFaaS's routes at the root, for TFaaS's clients (curl, its C++
client in CMSSW)::

    mlaas serve --tfaas --register runs/job-1/bundle
    curl -H "Authorization: token $MLAAS_TOKEN" -d '{"keys": [...], "values": [...]}' \\
        http://127.0.0.1:8765/json

The token is ``--token``, else ``$MLAAS_TOKEN``, else a random one printed at start.
Every route of the Jupyter extension is there (jobs, data, models); paths are
confined to ``--root`` (default: the current folder).
"""

from __future__ import annotations

import argparse
import os

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mlaas serve``."""
    parser.add_argument("--models", metavar="DIR", help="registry folder (default: the core's)")
    parser.add_argument("--root", metavar="DIR", help="data root (default: this folder)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--token", help="API token (default: $MLAAS_TOKEN, else random)")
    parser.add_argument(
        "--register",
        action="append",
        default=[],
        metavar="BUNDLE",
        help="register this bundle folder first (repeatable)",
    )
    parser.add_argument("--max-delay-ms", type=float, default=2.0, help="micro-batching window")
    parser.add_argument("--max-batch", type=int, default=4096, help="rows of one model call")
    parser.add_argument("--workers", type=int, default=2, help="threads running the models")
    parser.add_argument("--max-cached", type=int, default=4, help="models kept loaded")
    parser.add_argument(
        "--tfaas",
        action="store_true",
        help="also serve TFaaS's routes at the root (/json, /proto, /models, /upload, "
        "/delete, /status) for its clients",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (SIGINT or SIGTERM)."""
    from ..web.standalone import make_server, new_token

    token = args.token or os.environ.get("MLAAS_TOKEN") or ""
    generated = not token
    token = token or new_token()
    extra = [
        f"--Mlaas.predict_max_delay_ms={args.max_delay_ms}",
        f"--Mlaas.predict_max_batch={args.max_batch}",
        f"--Mlaas.predict_workers={args.workers}",
        f"--Mlaas.max_cached_models={args.max_cached}",
        "--ServerApp.log_level=" + ("DEBUG" if args.verbose else "WARN"),
    ]
    app = make_server(
        token=token,
        models_dir=args.models,
        root_dir=args.root,
        host=args.host,
        port=args.port,
        tfaas=args.tfaas,
        extra=extra,
    )
    core = app.web_app.settings["mlaas_core"]
    for bundle in args.register:
        info = core.registry.register(bundle)
        print(f"registered {bundle} as {info.name!r} version {info.version}", flush=True)
    names = core.registry.names()
    root = f"http://{args.host}:{app.port}/"
    tfaas = f", TFaaS's routes at {root} (json, proto, models...)" if args.tfaas else ""
    print(
        f"mlaas serve: {len(names)} model(s) from {core.models_dir} at {root}mlaas/api/{tfaas}",
        flush=True,
    )
    if generated:
        print(f"token: {token}", flush=True)
    app.start()
    return 0
